"""The light-curve page: facts, plotly figure, table of points, delete buttons, alert list links."""

import base64
import json
import re

import numpy as np
import pytest

from alerts.lightcurves import LightCurve
from alerts.models import Alert
from alerts.plots import LIMIT_SYMBOL, lightcurve_figure
from calibration.models import FollowupPoint
from observers.models import Observatory

FIGURE = re.compile(r'<script id="lightcurve-figure" type="application/json">(.*?)</script>', re.S)


def values(array) -> np.ndarray:
    """A figure array as numbers: plotly writes numpy arrays as base64 ('bdata') in its JSON."""
    if isinstance(array, dict):
        decoded = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        return decoded.reshape([int(n) for n in array["shape"].split(",")]) if "shape" in array else decoded
    return np.asarray(array)


def test_page_shows_the_alert_plot_table_and_downloads(asassn14gy, client):
    response = client.get("/followup/get_alert_lc?alert_id=25477")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>ASASSN-14gy</h1>" in page and "ivo://asassn/ASASSN-14gy" in page
    assert "RA 84.812500°, Dec 45.473890°" in page and "05:39:15.00 +45:28:26.0" in page
    for link in ("/get_alert_lc_data?alert_id=25477", "format=csv", "format=ecsv", "format=votable"):
        assert link in page
    # plotly.js comes from this server, and the figure travels as JSON in a json_script element.
    assert '<script src="/static/vendor/plotly/plotly.min.js">' in page
    assert not re.search(r"<script[^>]+src=\"(https?:)?//", page)
    figure = json.loads(FIGURE.search(page).group(1))
    groups = [trace["legendgroup"] for trace in figure["data"] if "legendgroup" in trace]
    assert sorted(groups) == ["g", "i", "r"]
    assert page.count('<tr class="detection">') == 2 and page.count('<tr class="limit">') == 1
    assert "&gt; 19.357" in page
    # Nobody is logged in: no delete buttons.
    assert "followupid" not in page and "delete-point" not in page


def test_origin_link(db, client):
    Alert.objects.create(pk=7, ivorn="ivo://Gaia16aye", ra=296.0, dec=30.0)
    Alert.objects.create(pk=8, ivorn="ivo://ZTF24x", ra=1.0, dec=2.0, url="https://example.org/ZTF24x")
    Alert.objects.create(pk=9, ivorn="ivo://PS15bpa", ra=1.0, dec=2.0)
    assert (
        'href="https://gsaweb.ast.cam.ac.uk/alerts/alert/Gaia16aye/"'
        in client.get("/get_alert_lc?alert_id=7").content.decode()
    )
    assert 'href="https://example.org/ZTF24x"' in client.get("/get_alert_lc?alert_id=8").content.decode()
    page = client.get("/get_alert_lc?alert_id=9").content.decode()
    assert "not known" in page and "No follow-up points yet." in page and "plotly.min.js" not in page


def test_user_texts_are_escaped(make_observatory, client, db):
    evil = "<img src=x onerror=alert(1)></script>"
    observatory, _ = make_observatory("EVIL", name=f"Obs {evil}")
    alert = Alert.objects.create(ivorn=f"ivo://{evil}", ra=10.0, dec=20.0, comment=evil)
    FollowupPoint.objects.create(
        alert=alert, observatory=observatory, mjd=57000.0, survey="APASS", filter="V", mag=15.0, mag_err=0.1
    )
    page = client.get(f"/get_alert_lc?alert_id={alert.pk}").content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    script = FIGURE.search(page)
    assert "<" not in script.group(1)
    figure = json.loads(script.group(1))
    # Inside the figure the text is HTML-escaped too: plotly renders hover labels as HTML.
    assert figure["data"][0]["hovertext"] == ["Obs &lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;"]
    assert "<img" not in client.get("/list_of_alerts").content.decode()


def owned_points(make_observatory, alert):
    """Two observatories with one point each on the alert."""
    mine, _ = make_observatory("MINE", name="Mine")
    theirs, _ = make_observatory("THEIRS", name="Theirs")
    for k, obs in enumerate((mine, theirs)):
        FollowupPoint.objects.create(
            alert=alert,
            observatory=obs,
            mjd=57000.0 + k,
            survey="APASS",
            filter="V",
            mag=15.0,
            mag_err=0.1,
            catalog_sha256=f"{k:064x}",
        )
    return mine, theirs


def test_delete_button_only_for_the_owner(make_observatory, alert, client, curator):
    mine, theirs = owned_points(make_observatory, alert)
    mine_id = FollowupPoint.objects.get(observatory=mine).pk
    theirs_id = FollowupPoint.objects.get(observatory=theirs).pk
    client.force_login(mine.user)
    page = client.get(f"/get_alert_lc?alert_id={alert.pk}").content.decode()
    assert '<form id="delete-point" method="post" action="/cgi/delpoint">' in page
    assert 'name="csrfmiddlewaretoken"' in page and 'name="outputFormat" value="html"' in page
    assert f'name="followupid" value="{mine_id}"' in page
    assert f'name="followupid" value="{theirs_id}"' not in page
    client.logout()
    make_observatory("OTHER", name="Other")
    client.force_login(Observatory.objects.get(prefix="OTHER").user)
    assert "followupid" not in client.get(f"/get_alert_lc?alert_id={alert.pk}").content.decode()
    # Curators may delete any point.
    client.force_login(curator)
    page = client.get(f"/get_alert_lc?alert_id={alert.pk}").content.decode()
    assert f'value="{mine_id}"' in page and f'value="{theirs_id}"' in page


def test_alert_list_links_to_light_curves_with_counts(asassn14gy, client):
    page = client.get("/list_of_alerts").content.decode()
    # Names without ivo:// (issue 18), linking to the alert's page.
    assert '<a href="/alerts/25477/">asassn/ASASSN-14gy</a>' in page
    row = page[page.index('/alerts/25477/">') :]
    row = row[: row.index("</tr>")]
    # Three points; the latest (all at one MJD, highest id) is the i-band limit.
    assert "<td>3</td>" in row and "&gt;19.36 i" in row and " d ago)" in row


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [("alert_id=abc", 400, "alert_id must be an integer."), ("alert_id=1", 404, "No alert with id 1.")],
)
def test_page_errors_are_one_plain_line(db, client, query, status, message):
    response = client.get(f"/get_alert_lc?{query}")
    assert response.status_code == status and response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == message + "\n"


def test_hidden_points_never_appear_on_the_page(asassn14gy, client):
    FollowupPoint.objects.filter(pk=6125).update(hidden=True)
    page = client.get("/get_alert_lc?alert_id=25477").content.decode()
    assert ">6124<" in page and ">6125<" not in page
    traces = json.loads(FIGURE.search(page).group(1))["data"]
    ids = [values(trace["customdata"])[:, 2] for trace in traces if "customdata" in trace]
    assert sorted(np.concatenate(ids).astype(int).tolist()) == [6124, 6126]


def make_lightcurve(limits: list[bool], bands: list[str], surveys: list[str]) -> LightCurve:
    n = len(limits)
    return LightCurve(
        alert=Alert(pk=1, ivorn="ivo://x", ra=1.0, dec=2.0),
        mjd=[57000.0 + k for k in range(n)],
        mag=[17.0 + 0.1 * k for k in range(n)],
        magerr=[-1.0 if limit else 0.03 for limit in limits],
        caliberr=[0.04] * n,
        filter=bands,
        catalog=surveys,
        observatory=["Obs"] * n,
        id=list(range(100, 100 + n)),
        is_limit=limits,
        owner=[1] * n,
    )


def test_figure_groups_traces_by_band_and_draws_limits_as_arrows():
    lc = make_lightcurve(
        limits=[False, True, False, False, True],
        bands=["V", "V", "g", "g", "B1pg"],
        surveys=["APASS", "APASS", "APASS", "SDSS", "USNO"],
    )
    figure = json.loads(lightcurve_figure(lc).to_json())
    traces = [trace for trace in figure["data"] if "legendgroup" in trace]
    assert [(t["legendgroup"], t["name"], list(values(t["x"])), t["showlegend"]) for t in traces] == [
        ("g", "g (APASS)", [57002.0], True),
        ("g", "g (SDSS)", [57003.0], True),
        ("V", "V (APASS)", [57000.0], True),
        ("V", "V (APASS)", [57001.0], False),
        ("B1pg", "B1pg (USNO)", [57004.0], True),
    ]
    assert values(traces[3]["customdata"]).tolist() == [[-1.0, 0.04, 101.0]]
    limit = traces[3]
    assert limit["marker"]["symbol"] == LIMIT_SYMBOL and "error_y" not in limit
    assert traces[0]["marker"]["symbol"] != traces[1]["marker"]["symbol"]  # one marker per survey
    assert values(traces[0]["error_y"]["array"])[0] == pytest.approx(0.05)  # 0.03 and 0.04 in quadrature
    assert figure["layout"]["yaxis"]["autorange"] == "reversed"
    assert figure["layout"]["xaxis2"]["type"] == "date" and figure["layout"]["xaxis2"]["side"] == "top"
    assert "follow-up id %{customdata[2]}" in traces[0]["hovertemplate"]
