"""Pages in a real browser: Debian's Chromium, driven by Playwright, against the live test server."""

from collections import Counter

import pytest

from calibration.models import FollowupPoint
from tests.conftest import ARTIFACTS, DECAM, STAR_G, import_legacy_lightcurve

pytestmark = pytest.mark.browser
# Points per legend group (band) given to plotly, leaving out the calendar-axis helper trace;
# numeric arrays arrive as base64 float64 ("bdata").
POINTS_PER_BAND = """gd => {
  const counts = {};
  for (const trace of gd.data) {
    if (trace.legendgroup === undefined) continue;
    const n = trace.x.bdata ? atob(trace.x.bdata).length / 8 : trace.x.length;
    counts[trace.legendgroup] = (counts[trace.legendgroup] || 0) + n;
  }
  return counts;
}"""
HIDDEN_BANDS = """gd => [
  ...new Set(gd.data.filter(trace => trace.visible === "legendonly").map(trace => trace.legendgroup))
]"""


@pytest.fixture
def asassn14ae(transactional_db):
    """Alert 25463 (ASASSN-14ae): 230 real points in 10 bands from three surveys."""
    import_legacy_lightcurve(25463)
    return 25463


def open_lightcurve(page, live_server, alert_id: int):
    page.goto(f"{live_server.url}/get_alert_lc?alert_id={alert_id}")
    page.wait_for_selector("#lightcurve[data-ready='1']")
    return page.locator("#lightcurve")


def test_light_curve_page(asassn14ae, page, live_server, outside_requests):
    plot = open_lightcurve(page, live_server, asassn14ae)
    expected = Counter(FollowupPoint.objects.filter(alert_id=asassn14ae).values_list("filter", flat=True))
    assert plot.evaluate(POINTS_PER_BAND) == dict(expected)
    assert len(expected) == 10
    # Every visible point is drawn: one SVG marker each, plus two invisible ones of the date axis.
    markers = page.locator("#lightcurve .scatterlayer .point")
    assert markers.count() == 230 + 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lightcurve.png"))

    # Clicking a band in the legend hides all of that band's points (both its surveys).
    page.locator("#lightcurve .legend .traces", has_text="V (APASS)").locator(".legendtoggle").click()
    page.wait_for_function(
        f"() => document.querySelectorAll('#lightcurve .scatterlayer .point').length"
        f" === {232 - expected['V']}"
    )
    assert plot.evaluate(HIDDEN_BANDS) == ["V"]

    # Zooming the MJD axis moves the calendar axis with it (MJD 56658 is 2014-01-01).
    plot.evaluate("gd => Plotly.relayout(gd, {'xaxis.range': [56658, 56668]})")
    page.wait_for_function(
        "() => document.getElementById('lightcurve').layout.xaxis2.range[0].startsWith('2014-01-01')"
    )
    assert outside_requests == []


def test_hover_and_sortable_table(asassn14ae, page, live_server):
    open_lightcurve(page, live_server, asassn14ae)
    first = page.locator("#lightcurve .scatterlayer .point").first
    first.hover(force=True)
    label = page.locator("#lightcurve .hoverlayer .hovertext").first
    label.wait_for()
    assert "follow-up id" in label.text_content() and "UTC" in label.text_content()

    rows = page.locator("#points tbody tr")
    assert rows.count() == 230
    mags = FollowupPoint.objects.filter(alert_id=asassn14ae).order_by("mag").values_list("mag", "is_limit")
    header = page.locator("#points th", has_text="mag").first
    header.click()
    assert rows.first.locator("td").nth(5).text_content() == f"{mags.first()[0]:.3f}"
    header.click()
    faintest, limit = mags.last()
    assert rows.first.locator("td").nth(5).text_content() == ("> " if limit else "") + f"{faintest:.3f}"


def test_login_form(observatory, page, live_server):
    _, hashtag = observatory
    page.goto(f"{live_server.url}/")
    page.fill("#id_hashtag", "SAAO1m_" + "0" * 32)
    page.click("button:has-text('Log in')")
    assert "Unknown or revoked hashtag" in page.locator("ul.messages").text_content()
    page.fill("#id_hashtag", hashtag)
    page.click("button:has-text('Log in')")
    assert "Logged in as SAAO 1m" in page.locator("ul.messages").text_content()
    assert page.locator("header .who").text_content() == "SAAO 1m"
    page.click("button:has-text('Log out')")
    assert page.locator("#id_hashtag").is_visible()


def test_upload_form_calibrates_a_real_catalog(
    observatory, star_alert, media, page, live_server, outside_requests
):
    _, hashtag = observatory
    page.goto(f"{live_server.url}/")
    page.fill("#id_hashtag", hashtag)
    page.click("button:has-text('Log in')")
    page.click("nav a:has-text('Upload')")
    page.fill("#id_EventID", star_alert.ivorn)
    page.set_input_files("#id_sexCat", str(DECAM))
    page.fill("#id_MJD", "59373.1")
    page.fill("#id_expTime", "60")
    page.fill("#id_comment", "browser test")
    page.click("button:has-text('Calibrate')")
    heading = page.locator("h1").text_content()
    point = FollowupPoint.objects.get()
    assert heading == f"Stored as follow-up {point.pk}"
    shown = page.locator("td.mag").text_content()
    assert shown.startswith(f"{point.mag:.3f} ± ") and "(APASS/g)" in shown
    assert abs(point.mag - STAR_G) < 0.1
    # The interactive calibration figure is drawn by the project's own plotly.js.
    page.wait_for_selector("#calibration-plot .main-svg")
    assert page.locator("#calibration-plot .scatterlayer .trace, #calibration-plot .gl-container").count() > 0
    page.click(f"a:has-text('Light curve of {star_alert.ivorn}')")
    page.wait_for_selector("#lightcurve[data-ready='1']")
    assert page.locator("#points tbody tr").count() == 1
    assert outside_requests == []
