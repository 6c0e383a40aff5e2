"""Public alert pages (list, light curves and their data) and the web form for new events."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from gsafollowup.errors import DomainError
from gsafollowup.http import plain_text_errors
from observers.forms import HashtagLoginForm

from .forms import NewEventForm
from .lightcurves import export_lightcurve, find_alert, load_lightcurve
from .models import Alert
from .pages import lightcurve_page
from .services import create_alert, legacy_time


def home(request):
    """What the server is, the login form, and where to go next."""
    recent = Alert.objects.with_followup_stats().order_by("-id")[:10]
    return render(request, "home.html", {"login_form": HashtagLoginForm(), "recent": recent})


def _positive_int(value: str | None) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def alert_rows(params) -> list[Alert]:
    """The alerts selected by the legacy list parameters (observed_only, published, num)."""
    alerts = Alert.objects.with_followup_stats()
    if params.get("observed_only") == "1":
        alerts = alerts.filter(nfollowup__gt=0)
    if params.get("published") == "1":
        alerts = alerts.filter(published__isnull=False).order_by("-published", "-id")
    else:
        alerts = alerts.order_by("-id")
    num = _positive_int(params.get("num"))
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


def alert_list(request):
    """GET /list_of_alerts: HTML table, or the legacy JSON array with ?format=json."""
    alerts = alert_rows(request.GET)
    if request.GET.get("format") == "json":
        return HttpResponse(legacy_alert_json(alerts), content_type="application/json")
    return render(request, "alerts/list.html", {"alerts": alerts, "params": request.GET})


@login_required
def new_event(request):
    """GET/POST /newevent/: the web form creating an alert."""
    form = NewEventForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
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
        else:
            messages.success(request, f"Alert {alert.ivorn} created (id {alert.pk}).")
            return redirect("alert-list")
    return render(request, "alerts/new_event.html", {"form": form})


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
