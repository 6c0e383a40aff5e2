"""The site's pages without a browser: what the result and point pages say, the upload flow, errors."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import Alert
from calibration.forms import parse_observation_time
from calibration.models import FollowupPoint
from calibration.pending import PENDING_PER_SESSION, keep_pending, pending_entry
from calibration.presenters import calibration_facts, error_text, value_and_error
from calibration.services import UNDO_MINUTES
from gsafollowup.errors import BadInput
from tests.conftest import DECAM

BROWSER = {"HTTP_SEC_FETCH_DEST": "document", "HTTP_ACCEPT": "text/html,application/xhtml+xml"}


def login(client, hashtag):
    client.post("/login/", {"hashtag": hashtag})
    return client


def form_post(client, path="/upload/", catalog=DECAM, **fields):
    data = {"EventID": "ivo://demo/GRB210605A field star", "MJD": "59373.1", "matchDist": "auto"}
    data.update(fields)
    if catalog is None:
        return client.post(path, data)
    with open(catalog, "rb") as handle:
        return client.post(path, {**data, "sexCat": handle})


def text_of(html: str) -> str:
    """The page's text without scripts and tags, blanks collapsed."""
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# ---------------------------------------------------------------- numbers


def test_errors_are_written_as_people_write_them():
    assert error_text(0.0002) == "0.0002"  # never 0.000
    assert error_text(0.00004) == "0.00004"
    assert error_text(0.016) == "0.016" and error_text(0.1234) == "0.123"
    assert error_text(-1.0) == "" and error_text(None) == ""  # the limit sentinel is no error
    assert value_and_error(15.29312, 0.0002) == "15.2931 ± 0.0002"
    assert value_and_error(-0.031, 0.012, signed=True) == "−0.031 ± 0.012"


def test_a_limit_says_where_it_was_measured_and_shows_no_sentinel(db):
    alert = Alert.objects.create(ivorn="ivo://limit", ra=24.0, dec=-48.0)
    values = {
        "mag": 21.4,
        "mag_err": -1.0,
        "mag_err_stat": -1.0,
        "calib_err": 0.02,
        "is_limit": True,
        "survey": "APASS",
        "filter": "g",
        "ra": 24.0,
        "dec": -48.0,
        "zeropoint": 25.1,
        "zeropoint_err": 0.003,
        "inst_mag": -3.7,
        "limit_snr": 5.0,
        "flags": ["limit_extrapolated"],
    }
    facts = calibration_facts(values, alert)
    shown = {row["label"]: row["value"] for row in facts["rows"]}
    assert shown["Upper limit (5σ)"] == "> 21.400 (APASS/g)"
    assert shown["Position"] == "at the alert position (no source)"
    assert "Position measured" not in shown and "Offset from the alert" not in shown
    assert not any("-1" in value or "−1" in value for value in shown.values())
    assert facts["flags"][0]["code"] == "limit_extrapolated" and "extrapolated" in facts["flags"][0]["text"]


# ---------------------------------------------------------------- result and point pages


def test_result_page_shows_the_diagnostics_of_the_fit(observatory, star_alert, media, client):
    _, hashtag = observatory
    response = form_post(login(client, hashtag), dryRun="on")
    assert response.status_code == 200
    page = response.content.decode()
    text = text_of(page)
    result = response.context["outcome"].result
    # Offset from the alert, instrumental magnitude, zero point and colour term with errors.
    assert re.search(r"Offset from the alert \d+\.\d\d″ \([+−]\d+\.\d\d″ E, [+−]\d+\.\d\d″ N\)", text), text
    assert f"Instrumental magnitude {value_and_error(result.inst_mag, result.inst_mag_err)}" in text
    assert f"Zero point {value_and_error(result.zeropoint, result.zeropoint_err)}" in text
    assert "Colour term " + value_and_error(result.colour_term, result.colour_term_err, True) in text
    assert f"Intrinsic scatter σ_int {error_text(result.sigma_int) or '0'}" in text
    assert f"Error scale × {result.error_scale:.2f}" in text
    # The candidate bands with their outcome: the chosen one first, the others with the reason.
    table = page[page.index('id="candidates"') :]
    rows = re.findall(r"<tr class=\"(\w[\w-]*)\"><td>([^<]+)</td>.*?<td>([^<]*)</td></tr>", table)
    assert rows[0] == ("chosen", "APASS/g", "chosen")
    assert len(rows) == len(result.candidates) > 1
    rejected = [c for c in result.candidates if c["rejected"]]
    for kind, _band, outcome in rows[1:]:
        if kind == "rejected":
            assert outcome.startswith("rejected: ")
    assert len([r for r in rows if r[0] == "rejected"]) == len(rejected)
    # Every quality flag is explained in words.
    for flag in result.flags:
        assert f"<code>{flag}</code>" in page
    assert "0.000 " not in text and "± −1" not in text and "± -1" not in text


def stored_point(client, hashtag) -> FollowupPoint:
    response = form_post(login(client, hashtag))
    assert response.status_code == 201, text_of(response.content.decode())[:300]
    return FollowupPoint.objects.get()


def test_point_page_asks_before_deleting_and_the_owner_can_undo(observatory, star_alert, media, client):
    _, hashtag = observatory
    point = stored_point(client, hashtag)
    page = client.get(f"/followup_point/{point.pk}/").content.decode()
    assert 'data-confirm="Delete follow-up point' in page
    assert "Offset from the alert" in page and 'id="candidates"' in page
    deleted = client.post("/cgi/delpoint", {"followupid": point.pk, "outputFormat": "html"})
    assert 'id="undo-delete"' in deleted.content.decode()
    point.refresh_from_db()
    assert point.hidden
    # Somebody else cannot undo it (and does not see that it exists).
    assert Client().post(f"/followup_point/{point.pk}/restore").status_code == 302  # to the login
    restored = client.post(f"/followup_point/{point.pk}/restore")
    assert restored.status_code == 302 and restored["Location"] == f"/followup_point/{point.pk}/"
    point.refresh_from_db()
    assert not point.hidden


def test_undo_is_refused_after_its_minutes_and_when_a_duplicate_replaced_the_point(
    observatory, star_alert, media, client
):
    _, hashtag = observatory
    point = stored_point(client, hashtag)
    client.post("/cgi/delpoint", {"followupid": point.pk, "outputFormat": "html"})
    # The same catalog stored again while the first one is deleted: restoring would duplicate it.
    again = form_post(client)
    assert again.status_code == 201
    newer = FollowupPoint.objects.exclude(pk=point.pk).get()
    refused = client.post(f"/followup_point/{point.pk}/restore")
    assert refused.status_code == 409
    assert f'href="/followup_point/{newer.pk}/"' in refused.content.decode()
    point.refresh_from_db()
    assert point.hidden
    # Past the undo window only a curator can restore it.
    newer.delete()
    FollowupPoint.objects.filter(pk=point.pk).update(
        hidden_at=timezone.now() - timedelta(minutes=UNDO_MINUTES + 1)
    )
    late = client.post(f"/followup_point/{point.pk}/restore")
    assert late.status_code == 403 and "a curator can restore it" in late.content.decode()
    assert 'id="undo-delete"' not in late.content.decode()


# ---------------------------------------------------------------- upload flow


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("59373.1", "MJD"),
        ("2459373.6", "JD"),
        ("2021-06-08T02:24:00", "ISO date"),
        ("2021-06-08 02:24", "ISO date"),
    ],
)
def test_the_time_field_takes_mjd_jd_or_iso_and_says_which(text, kind):
    mjd, understood = parse_observation_time(text)
    assert mjd == pytest.approx(59373.1, abs=1e-6)
    assert understood == f"understood as {kind}: MJD 59373.10000 = 2021-06-08T02:24:00 UTC"


@pytest.mark.parametrize("text", ["yesterday", "2021-13-45", "1e300", "nan", ""])
def test_the_time_field_refuses_what_is_no_time(text):
    with pytest.raises(BadInput):
        parse_observation_time(text)


def test_the_light_curve_page_offers_an_upload_for_its_alert_that_fills_the_form(
    observatory, star_alert, client
):
    _, hashtag = observatory
    page = client.get(f"/get_alert_lc?alert_id={star_alert.pk}").content.decode()
    link = "/upload/?EventID=ivo%3A%2F%2Fdemo%2FGRB210605A+field+star"
    assert f'href="{link}">Upload for this alert</a>' in page
    form = login(client, hashtag).get(link).content.decode()
    assert 'value="ivo://demo/GRB210605A field star"' in form


def test_after_an_error_the_fields_and_the_file_stay_and_the_error_sits_by_its_field(
    observatory, star_alert, media, client
):
    _, hashtag = observatory
    refused = form_post(login(client, hashtag), MJD="yesterday", comment="kept words")
    assert refused.status_code == 400
    page = refused.content.decode()
    field = page[page.index('id="field-MJD"') : page.index('id="field-expTime"')]
    assert 'id="id_MJD_errors"' in field and "is not a time" in field
    assert 'value="yesterday"' in field and "kept words" in page
    assert f"Kept from your last attempt: <strong>{DECAM.name}</strong>" in page
    kept = re.search(r'name="kept_catalog" value="([0-9a-f]{64})"', page).group(1)
    # Corrected, without choosing the file again: the kept catalog is calibrated and stored.
    stored = form_post(client, catalog=None, MJD="2021-06-08T02:24:00", kept_catalog=kept)
    assert stored.status_code == 201
    assert "understood as ISO date: MJD 59373.10000" in stored.content.decode()
    assert FollowupPoint.objects.get().catalog_sha256 == kept


def test_unknown_alert_is_said_beside_the_alert_field(observatory, star_alert, media, client):
    _, hashtag = observatory
    refused = form_post(login(client, hashtag), EventID="ivo://unknown")
    assert refused.status_code == 404
    page = refused.content.decode()
    field = page[page.index('id="field-EventID"') : page.index('id="field-sexCat"')]
    assert "Unknown event" in field


def test_store_this_result_stores_the_dry_run_without_sending_it_again(
    observatory, star_alert, media, client
):
    _, hashtag = observatory
    dry = form_post(login(client, hashtag), dryRun="on", comment="night 1")
    token = re.search(r'name="catalog" value="([0-9a-f]{64})"', dry.content.decode()).group(1)
    assert FollowupPoint.objects.count() == 0
    stored = client.post("/upload/store", {"catalog": token})
    assert stored.status_code == 201
    point = FollowupPoint.objects.get()
    assert (point.catalog_sha256, point.comment, point.mjd) == (token, "night 1", pytest.approx(59373.1))
    assert "Stored as follow-up" in stored.content.decode()
    # Another session cannot use the digest; the same dry run stored again is a 409 naming the point.
    other = login(Client(), hashtag)
    assert other.post("/upload/store", {"catalog": token}).status_code == 400
    form_post(client, dryRun="on")
    duplicate = client.post("/upload/store", {"catalog": token})
    assert duplicate.status_code == 409
    assert f'href="/followup_point/{point.pk}/">See the stored point' in duplicate.content.decode()


def test_kept_catalogs_are_bounded_per_session(media):
    session = {}
    digests = [
        keep_pending(session, f"catalog {k}".encode(), f"c{k}.cat") for k in range(PENDING_PER_SESSION + 2)
    ]
    assert list(session["pending_catalogs"]) == digests[-PENDING_PER_SESSION:]
    with pytest.raises(BadInput):
        pending_entry(session, digests[0])
    assert pending_entry(session, digests[-1])["content"] == f"catalog {PENDING_PER_SESSION + 1}".encode()
    with pytest.raises(BadInput):
        pending_entry({}, digests[-1])  # a session that did not send it


# ---------------------------------------------------------------- errors in the site's own pages


def test_list_of_followups_sends_a_browser_to_the_login_and_scripts_get_the_legacy_401(db, client):
    page = client.get("/list_of_followups", **BROWSER)
    assert page.status_code == 302 and page["Location"] == "/?next=/list_of_followups"
    script = client.get("/list_of_followups")
    assert script.status_code == 401 and script["Content-Type"].startswith("text/plain")
    assert client.get("/list_of_followups", {"format": "json"}, **BROWSER).status_code == 401


def test_unknown_alert_page_in_the_layout_for_browsers_plain_for_scripts(db, client):
    page = client.get("/get_alert_lc?alert_id=987654", **BROWSER)
    assert page.status_code == 404 and "<nav" in page.content.decode()
    assert "987654" in text_of(page.content.decode())
    script = client.get("/get_alert_lc?alert_id=987654")
    assert script.status_code == 404 and script["Content-Type"].startswith("text/plain")


def test_not_found_page_is_in_the_layout(db, client):
    page = client.get("/no/such/page")
    assert page.status_code == 404
    html = page.content.decode()
    assert "<nav" in html and "There is no page at" in html and 'href="/api/v1/"' in html


def test_the_api_has_an_index(db, client):
    index = client.get("/api/v1/")
    assert index.status_code == 200
    routes = index.json()["routes"]
    assert routes["points"]["url"] == "http://testserver/api/v1/points/"
    assert routes["redoc"]["url"] == "http://testserver/api/v1/redoc/"
    assert (
        client.get("/followup/api/v1/").json()["routes"]["alerts"]["url"].endswith("/followup/api/v1/alerts/")
    )
    assert client.get("/api/v1/nothing").json()["error"]["code"] == "not_found"


def test_every_page_has_navigation_footer_and_favicon(db, client):
    html = client.get("/").content.decode()
    assert ">Login</a>" in html and 'href="/api/v1/redoc/">API docs</a>' in html
    assert re.search(r"gsafollowup \d+\.\d+\.\d+: open photometric", html)
    assert 'rel="icon" href="/static/favicon.svg"' in html
    from django.contrib.staticfiles import finders

    assert finders.find("favicon.svg")


def test_the_bands_people_confuse_differ_in_colour_and_shape():
    from alerts.plots import BAND_STYLES

    styles = [BAND_STYLES[band] for band in ("r", "R", "i", "I", "z", "y", "g", "V", "B")]
    assert len({colour for colour, _ in styles}) == len(styles)
    assert len({shape for _, shape in styles}) == len(styles)
