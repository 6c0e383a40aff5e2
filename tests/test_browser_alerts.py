"""The alert list, the alert page and the new-event form in a real browser (Debian's Chromium, Playwright)."""

import pytest

from alerts.harvesting import harvest_tns
from alerts.models import Alert, GaiaPoint
from alerts.services import add_alias
from alerts.sources.tns import TnsSelection
from tests.conftest import alerts_on_a_line
from tests.test_harvest import NOW, tns_file

pytestmark = pytest.mark.browser
# The page's figure: each trace's name and how many points it draws (numbers may come as base64).
TRACES = """gd => gd.data.filter(t => t.name).map(t => [
  t.name, t.x.bdata ? atob(t.x.bdata).length / 8 : t.x.length
])"""


@pytest.fixture
def listed(transactional_db):
    """120 alerts on a line of RA, every tenth with an alias."""
    return alerts_on_a_line()


def names(page) -> list[str]:
    return page.locator("table.data tbody tr td:nth-child(2) a").all_text_contents()


def log_in(page, live_server, hashtag):
    page.goto(f"{live_server.url}/")
    page.fill("#id_hashtag", hashtag)
    page.click("button:has-text('Log in')")


def test_alert_list_search_cone_sort_and_pages(listed, page, live_server, outside_requests):
    page.goto(f"{live_server.url}/list_of_alerts")
    assert page.locator("p.count").text_content().strip() == "120 alerts, page 1 of 3"
    assert len(names(page)) == 50 and names(page)[0] == "bench/A119"
    with page.expect_navigation():  # read the next page, not the one being left
        page.click("nav.pages a:has-text('next')")
    assert "page 2 of 3" in page.locator("p.count").text_content() and names(page)[0] == "bench/A069"
    with page.expect_navigation():  # read the next page, not the one being left
        page.click("nav.pages a:has-text('last')")
    assert len(names(page)) == 20

    # Sorting by a column keeps to it across pages; a second click turns it round.
    page.goto(f"{live_server.url}/list_of_alerts")
    with page.expect_navigation():  # read the next page, not the one being left
        page.click("thead a:has-text('Alert')")
    assert names(page)[:2] == ["bench/A000", "bench/A001"]
    with page.expect_navigation():  # read the next page, not the one being left
        page.click("nav.pages a:has-text('next')")
    assert names(page)[0] == "bench/A050" and "sort=name" in page.url
    with page.expect_navigation():  # read the next page, not the one being left
        page.click("thead a:has-text('Alert')")
    assert names(page)[0] == "bench/A119"

    # Search by an alias (any case), then a cone.
    page.fill("input[name=q]", "2024X01")
    with page.expect_navigation():  # read the next page, not the one being left
        page.click("form.filters button:has-text('Search')")
    assert names(page) == ["bench/A010"] and page.locator("p.count").text_content().strip() == "1 alert"
    assert "2024x010" in page.locator("table.data tbody").text_content()
    page.fill("input[name=q]", "")
    page.fill("input[name=cone]", "10.0,10.0,0.6")
    with page.expect_navigation():  # read the next page, not the one being left
        page.click("form.filters button:has-text('Search')")
    assert sorted(names(page)) == ["bench/A019", "bench/A020", "bench/A021"]
    page.fill("input[name=cone]", "1,2")
    with page.expect_navigation():  # read the next page, not the one being left
        page.click("form.filters button:has-text('Search')")
    assert "cone must be" in page.content()
    assert outside_requests == []


def test_alert_page_names_position_gaia_trace_and_upload(observatory, page, live_server, outside_requests):
    _, hashtag = observatory
    alert = Alert.objects.create(ivorn="ivo://Gaia16aye", ra=295.79574, dec=30.07638)
    add_alias(alert, "2016dai")
    GaiaPoint.objects.bulk_create(
        GaiaPoint(alert=alert, jd_tcb=2457600.5 + k, mjd=57600.0 + k, mag=15.5 + 0.1 * k, mag_err=0.005)
        for k in range(3)
    )
    log_in(page, live_server, hashtag)
    page.goto(f"{live_server.url}/alerts/{alert.pk}/")
    assert page.locator("h1").text_content() == "Gaia16aye"
    assert page.locator("dd.aliases").text_content() == "2016dai"
    assert page.locator(".sexagesimal").text_content() == "(19:43:10.98 +30:04:35.0)"
    page.wait_for_selector("#lightcurve .main-svg")
    traces = page.locator("#lightcurve").evaluate(TRACES)
    assert ["Gaia G (alerts; approx. errors)", 3] in traces
    with page.expect_navigation():  # read the next page, not the one being left
        page.click("a:has-text('Upload for this alert')")
    assert page.locator("#id_EventID").input_value() == "ivo://Gaia16aye"
    assert outside_requests == []


def test_new_event_fills_the_position_from_the_name_without_submitting(
    observatory, page, live_server, outside_requests, tmp_path
):
    _, hashtag = observatory
    harvest_tns([tns_file(tmp_path)], TnsSelection(), now=NOW)
    log_in(page, live_server, hashtag)
    page.goto(f"{live_server.url}/newevent/")
    page.fill("#id_EventID", "SN 2024abc")
    page.click("#fill-from-name")
    page.wait_for_function("() => document.getElementById('id_ra').value !== ''")
    assert (page.locator("#id_ra").input_value(), page.locator("#id_dec").input_value()) == ("150.1", "2.2")
    assert "TNS 2024abc, harvested" in page.locator("#position-from").text_content()
    assert page.url.endswith("/newevent/") and not Alert.objects.exists()  # nothing submitted
    page.fill("#id_EventID", "2024zzz")
    page.click("#fill-from-name")
    page.wait_for_function("() => document.getElementById('position-from').classList.contains('error')")
    assert "No harvested TNS or Gaia object is named 2024zzz" in page.locator("#position-from").text_content()
    page.fill("#id_EventID", "ivo://tns/2024abc")
    page.click("#fill-from-name")
    page.wait_for_function("() => !document.getElementById('position-from').classList.contains('error')")
    page.click("button:has-text('Create')")
    assert Alert.objects.get(ivorn="ivo://tns/2024abc").ra == 150.1
    assert outside_requests == []
