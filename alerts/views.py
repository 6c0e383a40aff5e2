"""Public alert pages (list, light curves and their data) and the web form for new events."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from gsafollowup.errors import BadInput, DomainError, NotFound, UnknownEvent
from gsafollowup.http import json_errors, plain_text_errors
from observers.auth import path_without_hashtag
from observers.forms import HashtagLoginForm

from .forms import NewEventForm
from .lightcurves import export_lightcurve, find_alert, load_lightcurve
from .models import Alert
from .pages import lightcurve_page, list_page, table_rows
from .selectors import harvested_position, recently_observed
from .services import create_alert, legacy_time, position_source


def home(request):
    """What the server is, the login form, and where to go next."""
    # Recently observed first: what observers are following now.
    recent = table_rows(recently_observed(10))
    # next= comes back after login; a hashtag sent in the query string must not be echoed into the page.
    context = {"login_form": HashtagLoginForm(), "recent": recent, "next": path_without_hashtag(request)}
    return render(request, "home.html", context)


def _flag(params, name: str) -> bool:
    """A 0/1 query parameter (also true/false, yes/no, on/off); BadInput for anything else."""
    text = (params.get(name) or "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise BadInput(f"{name} must be 0 or 1.")


def _limit(params) -> int | None:
    """The num parameter: a positive integer, or None (no limit) when absent."""
    text = (params.get("num") or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**31:
        raise BadInput("num must be a positive integer (the number of alerts to list).")
    return int(text)


def alert_rows(params) -> list[Alert]:
    """The alerts selected by the legacy list parameters (observed_only, published, num)."""
    alerts = Alert.objects.all()
    num = _limit(params)
    if _flag(params, "observed_only"):
        alerts = alerts.observed()
    if _flag(params, "published"):
        alerts = alerts.filter(published__isnull=False).order_by("-published", "-id")
    else:
        alerts = alerts.order_by("-id")
    return list(alerts[:num] if num else alerts)


def legacy_alert_json(alerts) -> str:
    """The legacy array, laid out as the old server did (one object per line)."""
    rows = [
        json.dumps(
            {
                "id": a.pk,
                "ivorn": a.ivorn,
                "published": legacy_time(a.published),
                "ra": a.ra,
                "dec": a.dec,
                "nfollowup": a.nfollowup,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )
        for a in alerts
    ]
    return "[" + ", \n ".join(rows) + "]"


@require_safe
@plain_text_errors
def alert_list(request):
    """GET /list_of_alerts: HTML table, or the legacy JSON array with ?format=json."""
    fmt = (request.GET.get("format") or "html").strip().lower()
    if fmt not in ("json", "html"):
        raise BadInput("format must be json, or left out for the HTML page.")
    if fmt == "json":
        return HttpResponse(legacy_alert_json(alert_rows(request.GET)), content_type="application/json")
    # The legacy parameters mean the same on the page: a wrong value is a 400 there too.
    _limit(request.GET)
    _flag(request.GET, "observed_only")
    _flag(request.GET, "published")
    return render(request, "alerts/list.html", list_page(request.GET))


@login_required
def new_event(request):
    """GET/POST /newevent/: the web form creating an alert."""
    form = NewEventForm(request.POST or None)
    status = 200
    if request.method == "POST":
        # A refused event answers with the status the legacy endpoint gives (400, 409).
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                alert = create_alert(
                    ivorn=data["EventID"],
                    ra=data["ra"],
                    dec=data["dec"],
                    url=data["url"],
                    comment=data["comment"],
                    user=request.user,
                )
            except DomainError as error:
                form.add_error(None, error.message)
                status = error.http_status
            else:
                where = f" at the position of {alert.position_from}" if alert.position_from else ""
                messages.success(request, f"Alert {alert.ivorn} created (id {alert.pk}){where}.")
                return redirect("alert-list")
    return render(request, "alerts/new_event.html", {"form": form}, status=status)


@require_safe
@plain_text_errors
def lightcurve_data(request):
    """GET /get_alert_lc_data: the legacy JSON arrays, or ?format=csv, ecsv or votable."""
    alert, name = find_alert(request.GET)
    download = export_lightcurve(load_lightcurve(alert), request.GET.get("format"), alert_name=name)
    response = HttpResponse(download.body, content_type=download.content_type)
    if download.filename:
        response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    return response


@require_safe
@plain_text_errors
def lightcurve(request):
    """GET /get_alert_lc: the alert's page with its interactive light curve and table of points."""
    alert, _ = find_alert(request.GET)
    return render(request, "alerts/lightcurve.html", lightcurve_page(load_lightcurve(alert), request.user))


@require_safe
@plain_text_errors
def alert_page(request, pk: int):
    """GET /alerts/<id>/: the alert's names, position, links out, light curve and points."""
    alert = Alert.objects.filter(pk=pk).first()
    if alert is None:
        raise UnknownEvent(f"No alert with id {pk}.")
    return render(request, "alerts/lightcurve.html", lightcurve_page(load_lightcurve(alert), request.user))


@require_safe
@json_errors
def position_by_name(request):
    """GET /newevent/position?name=2024abc: the last harvested TNS or Gaia position (the form's button)."""
    name = (request.GET.get("name") or "").strip()[:255]
    if not name:
        raise BadInput("Give the TNS or Gaia name (name=2024abc or name=Gaia16aye).")
    record = harvested_position(name)
    if record is None:
        raise NotFound(f"No harvested TNS or Gaia object is named {name[:60]}; type RA and Dec.")
    return JsonResponse(
        {"name": record.name, "ra": record.ra, "dec": record.dec, "position_from": position_source(record)}
    )
