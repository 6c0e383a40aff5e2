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
    # The logged-out home page has the same URL: wait for its form instead of racing the reload.
    page.locator("#id_hashtag").wait_for()
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


# Each tick of the calendar axis: its time (ms since 1970, UTC), label lines and place in pixels
# on both axes (the same instant on the MJD axis must sit at the same place).
CALENDAR_TICKS = """gd => {
  const full = gd._fullLayout;
  return Array.from(gd.querySelectorAll('.x2tick text')).map(el => {
    const ms = el.__data__.x;
    const lines = Array.from(el.querySelectorAll('tspan.line')).map(t => t.textContent);
    return {
      ms: ms,
      label: lines.length ? lines : [el.textContent],
      px: full.xaxis2.d2p(ms),
      mjdPx: full.xaxis.d2p(ms / 86400000 + 40587),
    };
  });
}"""


def check_calendar_labels(plot) -> int:
    """Every calendar tick sits on an exact UTC day and says the day astropy's Time says."""
    from astropy.time import Time

    ticks = plot.evaluate(CALENDAR_TICKS)
    assert len(ticks) >= 3
    for tick in ticks:
        assert tick["ms"] % 86_400_000 == 0, tick
        day = Time(tick["ms"] / 86_400_000 + 40587, format="mjd", scale="utc").to_datetime()
        assert tick["label"][0] == f"{day:%b} {day.day}", (tick, day)
        assert abs(tick["px"] - tick["mjdPx"]) < 1, tick
    return len(ticks)


def test_calendar_axis_labels_the_right_days(asassn14ae, page, live_server):
    plot = open_lightcurve(page, live_server, asassn14ae)
    check_calendar_labels(plot)
    # Zoomed to ten days (ticks every day or two), and to two months.
    for low, high in ((56658.3, 56668.7), (56700.2, 56760.9)):
        plot.evaluate(f"gd => Plotly.relayout(gd, {{'xaxis.range': [{low}, {high}]}})")
        page.wait_for_function(
            f"() => document.getElementById('lightcurve').layout.xaxis2.range[0]"
            f" .startsWith('{mjd_iso(low)[:10]}')"
        )
        check_calendar_labels(plot)


def mjd_iso(mjd: float) -> str:
    from astropy.time import Time

    return Time(mjd, format="mjd", scale="utc").isot


# The error bar drawn for the only detection: its half-height in magnitudes, read off the SVG.
ERROR_BAR_MAG = """gd => {
  const height = gd.querySelector('.errorbar path').getBBox().height;
  const axis = gd._fullLayout.yaxis;
  const pxPerMag = Math.abs(axis.l2p(1) - axis.l2p(0));
  return {half: height / 2 / pxPerMag, pxPerMag: pxPerMag};
}"""


def test_plotted_error_bar_is_the_reported_total(observatory, star_alert, media, page, live_server, client):
    _, hashtag = observatory
    with open(DECAM, "rb") as handle:
        answer = client.post(
            "/cgi/upload",
            {
                "EventID": star_alert.ivorn,
                "MJD": "59373.1",
                "hashtag": hashtag,
                "outputFormat": "json",
                "noPlot": "1",
                "sexCat": handle,
            },
        ).json()
    plot = open_lightcurve(page, live_server, star_alert.pk)
    drawn = plot.evaluate(ERROR_BAR_MAG)
    # Within the width of one pixel of the magnitude axis.
    assert abs(drawn["half"] - answer["mag_err"]) <= 1.5 / drawn["pxPerMag"], (drawn, answer)
    # The table and the hover give the parts: statistical and calibration.
    row = page.locator("#points tbody tr").first.text_content()
    assert f"{answer['mag_err_stat']:.3f}" in row and f"{answer['calib_err']:.3f}" in row


TARGET_ON_TOP = """gd => {
  const traces = gd._fullData;
  const target = traces.findIndex(t => t.name === 'target');
  const stars = traces.map((t, k) => [t, k]).filter(([t]) => t.xaxis === 'x' && t.name !== 'target');
  const full = gd._fullLayout;
  const box = gd.querySelector('.main-svg').getBoundingClientRect();
  const t = traces[target];
  return {
    type: t.type,
    drawnAfter: stars.every(([s, k]) => s.type === t.type && k < target),
    x: box.left + full.xaxis._offset + full.xaxis.d2p(t.x[0]),
    y: box.top + full.yaxis._offset + full.yaxis.d2p(t.y[0]),
  };
}"""


def test_calibration_plot_draws_the_target_on_top(observatory, star_alert, media, page, live_server):
    import io

    from PIL import Image

    _, hashtag = observatory
    page.goto(f"{live_server.url}/")
    page.fill("#id_hashtag", hashtag)
    page.click("button:has-text('Log in')")
    page.goto(f"{live_server.url}/upload/")
    page.fill("#id_EventID", star_alert.ivorn)
    page.set_input_files("#id_sexCat", str(DECAM))
    page.fill("#id_MJD", "59373.1")
    page.check("#id_dryRun")
    page.click("button:has-text('Calibrate')")
    page.wait_for_selector("#calibration-plot .main-svg")
    # The result page lists the fit's diagnostics above the plot: bring the plot into the viewport.
    page.locator("#calibration-plot").scroll_into_view_if_needed()
    target = page.locator("#calibration-plot").evaluate(TARGET_ON_TOP)
    # In the same WebGL layer as the stars and drawn after them (plotly puts WebGL above SVG).
    assert target["type"] == "scattergl" and target["drawnAfter"], target
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    r, g, b = shot.getpixel((round(target["x"]), round(target["y"])))
    assert r > 200 and 90 < g < 170 and b < 80, (r, g, b)  # the target's orange, not a star's blue
