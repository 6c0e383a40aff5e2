"""The site's pages in Chromium: phones, themes, accessibility, the upload flow and the point page.

Every test runs in the ``page`` fixture, which refuses and records any request leaving 127.0.0.1.
``GSA_SCREENSHOTS=1`` makes test_screenshots write the README's screenshots to docs/screenshots/
(``make screenshots``); without it they go to var/artifacts/screenshots/.
"""

import os
import re
from pathlib import Path

import pytest

from calibration.models import FollowupPoint
from tests.conftest import ARTIFACTS, DECAM, import_legacy_lightcurve

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
AXE = "/static/vendor/axe-core/axe.min.js"


@pytest.fixture
def site(asassn14ae_alert, observatory, star_alert, media, page, live_server):
    """A site with a real light curve and a stored point of a real catalog, and the logged-in tab."""
    obs, hashtag = observatory
    log_in(page, live_server, hashtag)
    page.goto(f"{live_server.url}/upload/?EventID={star_alert.ivorn}")
    page.set_input_files("#id_sexCat", str(DECAM))
    page.fill("#id_MJD", "59373.1")
    page.click("button:has-text('Calibrate')")
    page.wait_for_selector("#calibration-plot[data-ready='1']")
    return {"point": FollowupPoint.objects.get(alert=star_alert), "alert": star_alert, "lc": asassn14ae_alert}


@pytest.fixture
def asassn14ae_alert(transactional_db):
    import_legacy_lightcurve(25463)
    return 25463


def log_in(page, live_server, hashtag):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_hashtag", hashtag)
    page.click("main button:has-text('Log in')")
    page.wait_for_selector("header .who")


def main_pages(site) -> dict[str, str]:
    """The main pages by name: path, and what to wait for before looking."""
    return {
        "home": "/",
        "alerts": "/list_of_alerts",
        "lightcurve": f"/get_alert_lc?alert_id={site['lc']}",
        "upload": f"/upload/?EventID={site['alert'].ivorn}",
        "point": f"/followup_point/{site['point'].pk}/",
        "my-points": "/list_of_followups",
        "new-event": "/newevent/",
        "login": "/login/",
        "not-found": "/no/such/page",
    }


def settle(page):
    """Wait for the figures the page draws (if any)."""
    for selector in ("#lightcurve", "#calibration-plot"):
        if page.locator(selector).count():
            page.wait_for_selector(f"{selector}[data-ready='1']")


WIDTHS = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"


def test_no_page_is_wider_than_a_phone(site, page, live_server, outside_requests):
    page.set_viewport_size(PHONE)
    wide = {}
    for name, path in [*main_pages(site).items(), ("result", None), ("api-docs", "/api/v1/redoc/")]:
        if path is None:  # the result page of a dry run
            page.goto(f"{live_server.url}/upload/?EventID={site['alert'].ivorn}")
            page.set_input_files("#id_sexCat", str(DECAM))
            page.fill("#id_MJD", "59373.2")
            page.check("#id_dryRun")
            page.click("button:has-text('Calibrate')")
        else:
            page.goto(live_server.url + path)
        settle(page)
        if name == "api-docs":
            page.wait_for_selector("#redoc-container h1, redoc h1, .api-content")
        scroll, client = page.evaluate(WIDTHS)
        if scroll > client:
            wide[name] = scroll
    assert wide == {}, f"pages wider than {PHONE['width']} px: {wide}"
    assert outside_requests == []


def test_phone_navigation_collapses_and_opens(site, page, live_server):
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/")
    nav = page.locator("#site-nav")
    assert not nav.is_visible()
    page.click("button.nav-toggle")
    assert nav.is_visible() and page.locator("#site-nav a:has-text('API docs')").is_visible()
    page.set_viewport_size(DESKTOP)
    assert page.locator("button.nav-toggle").is_hidden() and nav.is_visible()


def test_phone_layouts_of_the_figures(site, page, live_server):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/get_alert_lc?alert_id={site['lc']}")
    settle(page)
    legend = page.locator("#lightcurve").evaluate("gd => gd._fullLayout.legend")
    assert legend["orientation"] == "h" and legend["y"] < 0  # below the plot
    page.goto(f"{live_server.url}/followup_point/{site['point'].pk}/")
    settle(page)
    domains = page.locator("#calibration-plot").evaluate(
        "gd => ['yaxis', 'yaxis2', 'yaxis3'].map(a => gd._fullLayout[a].domain)"
    )
    # Three panels one above the other, none overlapping.
    assert domains[0][0] > domains[1][1] and domains[1][0] > domains[2][1], domains


def background(page) -> tuple[int, ...]:
    colour = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    return tuple(int(v) for v in re.findall(r"\d+", colour)[:3])


def test_dark_mode_follows_the_system_and_the_red_theme_is_chosen(site, page, live_server):
    page.emulate_media(color_scheme="dark")
    page.goto(f"{live_server.url}/get_alert_lc?alert_id={site['lc']}")
    settle(page)
    assert max(background(page)) < 60
    plot = page.locator("#lightcurve")
    assert plot.evaluate("gd => gd._fullLayout.paper_bgcolor") == "#171c27"
    page.emulate_media(color_scheme="light")
    page.wait_for_function(
        "() => document.getElementById('lightcurve')._fullLayout.paper_bgcolor === '#ffffff'"
    )
    assert min(background(page)) > 200
    # Red light, chosen in the footer: kept for the next page.
    page.select_option("#theme-choice", "red")
    page.wait_for_function("() => document.getElementById('lightcurve')._fullLayout.font.color === '#d03030'")
    page.goto(f"{live_server.url}/followup_point/{site['point'].pk}/")
    settle(page)
    assert page.evaluate("() => document.documentElement.dataset.theme") == "red"
    assert background(page) == (0, 0, 0)
    colour = page.evaluate("() => getComputedStyle(document.querySelector('h1')).color")
    red, green, blue = (int(v) for v in re.findall(r"\d+", colour)[:3])
    assert red > 150 and green < 80 and blue < 80


def test_no_serious_accessibility_violation_on_the_main_pages(site, page, live_server, outside_requests):
    found = {}
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        for name, path in main_pages(site).items():
            page.goto(live_server.url + path)
            settle(page)
            page.add_script_tag(url=live_server.url + AXE)
            violations = page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')
                   .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))"""
            )
            if violations:
                found[f"{name} ({theme})"] = violations
    assert found == {}
    assert outside_requests == []


# Where the first calibrator of the first panel is drawn, in page pixels.
FIRST_STAR = """gd => {
  const t = gd._fullData.find(t => t.name === 'calibrators' && t.xaxis === 'x');
  const full = gd._fullLayout;
  const box = gd.querySelector('.main-svg').getBoundingClientRect();
  return {
    x: box.left + full.xaxis._offset + full.xaxis.d2p(t.x[0]),
    y: box.top + full.yaxis._offset + full.yaxis.d2p(t.y[0]),
    stars: t.customdata,
  };
}"""


def test_calibration_hover_names_the_star_with_magnitudes_and_errors(site, page, live_server):
    page.goto(f"{live_server.url}/followup_point/{site['point'].pk}/")
    settle(page)
    plot = page.locator("#calibration-plot")
    plot.scroll_into_view_if_needed()
    first = plot.evaluate(FIRST_STAR)
    page.mouse.move(first["x"] - 20, first["y"] - 20)
    page.mouse.move(first["x"], first["y"], steps=4)
    label = page.locator("#calibration-plot .hoverlayer .hovertext").first
    label.wait_for()
    text = label.text_content()
    # The star under the mouse (the first or a neighbour): its row, magnitudes and errors.
    source = int(re.search(r"star (\d+)", text).group(1))
    # Typed arrays reach Python as lists or as {"0": ..., "1": ...}.
    rows = [r if isinstance(r, list) else [r[str(k)] for k in range(len(r))] for r in first["stars"]]
    star = next(row for row in rows if round(row[0]) == source)
    assert f"reference {star[1]:.3f} ± {star[2]:.3f}" in text
    assert f"instrumental {star[3]:.3f} ± {star[4]:.3f}" in text and "P(inlier)" in text
    # The residual panels colour the stars by their inlier probability.
    marker = plot.evaluate(
        "gd => gd._fullData.find(t => t.xaxis === 'x2' && t.name === 'calibrators').marker"
    )
    assert marker["colorscale"] and marker["cmin"] == 0 and marker["cmax"] == 1


def test_point_page_asks_before_deleting_and_the_deleted_page_undoes(site, page, live_server):
    point = site["point"]
    page.goto(f"{live_server.url}/followup_point/{point.pk}/")
    questions = []

    def answer(dialog, accept):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.click("button:has-text('Delete this point')")
    assert questions and questions[0].startswith(f"Delete follow-up point {point.pk}?")
    point.refresh_from_db()
    assert not point.hidden and page.url.endswith(f"/followup_point/{point.pk}/")
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.click("button:has-text('Delete this point')")
    page.wait_for_selector("h1:has-text('deleted')")
    point.refresh_from_db()
    assert point.hidden
    page.click(f"button:has-text('Undo: restore follow-up {point.pk}')")
    page.wait_for_selector("ul.messages li.success")
    point.refresh_from_db()
    assert not point.hidden


# Band and observatory of each row (the table has no delete column for this visitor).
CELLS = "rows => rows.map(row => [row.cells[3].textContent, row.cells[8].textContent])"


def test_points_table_filters_by_band_and_observatory(site, page, live_server):
    page.goto(f"{live_server.url}/get_alert_lc?alert_id={site['lc']}")
    settle(page)
    everything = page.locator("#points tbody tr").evaluate_all(CELLS)
    total = len(everything)
    page.select_option("#filter-band", "V")
    expected = [row for row in everything if row[0] == "V"]
    assert page.locator("#points tbody tr:visible").evaluate_all(CELLS) == expected and len(expected) < total
    assert page.locator("#points-shown").text_content() == f"{len(expected)} of {total} points shown"
    observatory = page.locator("#filter-observatory option").nth(1).get_attribute("value") or ""
    observatory = observatory or page.locator("#filter-observatory option").nth(1).text_content()
    page.select_option("#filter-observatory", observatory)
    both = [row for row in expected if row[1] == observatory]
    assert page.locator("#points tbody tr:visible").evaluate_all(CELLS) == both
    page.select_option("#filter-band", "")
    page.select_option("#filter-observatory", "")
    assert page.locator("#points tbody tr:visible").count() == total


def test_band_markers_differ_in_colour_and_shape(site, page, live_server):
    page.goto(f"{live_server.url}/get_alert_lc?alert_id={site['lc']}")
    settle(page)
    styles = page.locator("#lightcurve").evaluate(
        """gd => gd._fullData.filter(t => t.legendgroup && t.showlegend)
               .map(t => [t.legendgroup, t.marker.color, t.marker.symbol])"""
    )
    first = {}
    for band, colour, symbol in styles:
        first.setdefault(band, (colour, str(symbol).replace("-open", "").replace("-dot", "")))
    assert len({colour for colour, _ in first.values()}) == len(first) == 10  # no two bands alike


def test_upload_for_this_alert_then_store_the_dry_run(site, page, live_server):
    alert = site["alert"]
    FollowupPoint.objects.filter(alert=alert).delete()  # the same catalog would be a duplicate
    page.goto(f"{live_server.url}/get_alert_lc?alert_id={alert.pk}")
    page.click("a:has-text('Upload for this alert')")
    assert page.input_value("#id_EventID") == alert.ivorn
    page.set_input_files("#id_sexCat", str(DECAM))
    page.fill("#id_MJD", "not a date")
    page.fill("#id_comment", "second night")
    page.check("#id_dryRun")
    page.click("button:has-text('Calibrate')")
    # The error beside its field; the fields and the file stay.
    assert "is not a time" in page.locator("#field-MJD .errorlist").text_content()
    assert page.input_value("#id_comment") == "second night"
    assert DECAM.name in page.locator("#kept-catalog").text_content()
    page.fill("#id_MJD", "2459374.6")
    page.click("button:has-text('Calibrate')")
    assert page.locator("h1").text_content() == "Dry run: nothing stored"
    assert "understood as JD: MJD 59374.10000" in page.locator("#time-understood").text_content()
    before = FollowupPoint.objects.count()
    page.click("button:has-text('Store this result')")
    heading = page.locator("h1").text_content()
    stored = FollowupPoint.objects.order_by("-pk").first()
    assert FollowupPoint.objects.count() == before + 1 and heading == f"Stored as follow-up {stored.pk}"
    assert (stored.comment, round(stored.mjd, 5)) == ("second night", 59374.1)
    # The same result stored twice: the 409 links the stored point.
    page.goto(f"{live_server.url}/upload/?EventID={alert.ivorn}")
    page.set_input_files("#id_sexCat", str(DECAM))
    page.fill("#id_MJD", "2459374.6")
    page.check("#id_dryRun")
    page.click("button:has-text('Calibrate')")
    page.click("button:has-text('Store this result')")
    assert "See the stored point" in page.locator("ul.messages li.error").text_content()
    page.click("a:has-text('See the stored point')")
    assert page.locator("h1").text_content() == f"Follow-up {stored.pk}"


def test_api_docs_and_index_load_nothing_from_outside(site, page, live_server, outside_requests):
    page.goto(f"{live_server.url}/api/v1/redoc/")
    page.wait_for_selector("#redoc-container h1, redoc h1, .api-content")
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info")
    page.goto(f"{live_server.url}/api/v1/")
    assert '"routes"' in page.content()
    assert outside_requests == []


def test_screenshots(site, page, live_server):
    """The main pages at 1400 px and 390 px (committed under docs/screenshots with GSA_SCREENSHOTS=1)."""
    folder = SCREENSHOTS if os.environ.get("GSA_SCREENSHOTS") == "1" else ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    pages = main_pages(site)
    shots = {name: pages[name] for name in ("home", "alerts", "lightcurve", "upload", "point", "my-points")}
    for width, viewport in (("1400", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(viewport)
        for name, path in shots.items():
            page.goto(live_server.url + path)
            settle(page)
            target = folder / f"{name}-{width}.png"
            page.screenshot(path=str(target))  # the first screenful, as a visitor sees it
            assert target.stat().st_size > 5_000
