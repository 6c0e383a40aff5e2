"""Web pages of calibration: the upload form and its result, and a stored point's plot and page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from gsafollowup.errors import BadInput, DomainError
from observers.auth import current_observatory

from .batches import submit_batch
from .forms import SERVICE_FIELDS, BatchForm, UploadForm, calibrate_upload
from .models import FollowupPoint
from .pending import forget_pending, keep_pending, pending_entry
from .plots import calibration_png
from .presenters import (
    calibration_facts,
    deleted_context,
    figure_json,
    lightcurve_url,
    point_values,
    result_context,
)
from .services import may_change, restore_point

#: Refusals of the service that belong beside one field of the form.
ERROR_FIELDS = {"unknown_event": "EventID", "bad_catalog": "sexCat"}


def _kept(request) -> dict | None:
    """The catalog this session sent with the previous post of the form, if it is still kept."""
    sha256 = request.POST.get("kept_catalog", "")
    if not sha256:
        return None
    try:
        return {"sha256": sha256, **pending_entry(request.session, sha256)}
    except BadInput:
        return None


def _service_fields(data: dict) -> dict:
    """The upload's arguments as kept with a dry run, to store the same upload later."""
    return {name: data[name] for name in SERVICE_FIELDS} | {"dry_run": False}


def _result_page(request, outcome, form_fields: dict | None, content: bytes, filename: str, understood=""):
    context = result_context(request, outcome, False)
    context["time_understood"] = understood
    if outcome.dry_run and form_fields is not None:
        # Kept for "Store this result": the same bytes and fields, without sending them again.
        fields = _service_fields(form_fields)
        context["store_token"] = keep_pending(request.session, content, filename, fields)
    status = 200 if outcome.dry_run else 201
    return render(request, "calibration/result.html", context, status=status)


@login_required
def upload(request):
    """GET/POST /upload/: the web form; the result page shows the numbers and the plot.

    A refused post keeps its catalog (``calibration.pending``), so the observer corrects the
    fields without choosing the file again; GET ?EventID= fills in the alert.
    """
    if request.method != "POST":
        form = UploadForm(initial={"EventID": request.GET.get("EventID", "")[:255]})
        return render(request, "calibration/upload.html", {"form": form})
    kept = _kept(request)
    form = UploadForm(request.POST, request.FILES, kept=kept)
    chosen = request.FILES.get("sexCat")
    content, filename = (chosen.read(), chosen.name or "") if chosen else (None, "")
    if content is None and kept:
        content, filename = kept["content"], kept["name"]
    # A refused upload answers with the status the legacy endpoint gives (400, 404, 409, 422).
    status, existing_url, keep = 400, "", True
    if form.is_valid():
        try:
            outcome = calibrate_upload(request.user, form.cleaned_data, content, filename)
        except DomainError as error:
            form.add_error(ERROR_FIELDS.get(error.code), error.message)
            status = error.http_status
            keep = error.code != "bad_catalog"  # the observer must send another file
            existing = getattr(error, "existing_id", None)
            existing_url = reverse("followup-point", args=[existing]) if existing else ""
        else:
            if kept:
                forget_pending(request.session, kept["sha256"])
            return _result_page(request, outcome, form.cleaned_data, content, filename, form.time_understood)
    if content is not None and keep:
        sha256 = keep_pending(request.session, content, filename)
        form.kept = {"sha256": sha256, "name": filename, "size": len(content)}
    else:
        form.kept = None
    context = {"form": form, "existing_url": existing_url}
    return render(request, "calibration/upload.html", context, status=status)


@require_POST
@login_required
def store_dry_run(request):
    """POST /upload/store: store the upload of a dry run from its kept catalog and fields."""
    sha256 = request.POST.get("catalog", "")
    try:
        entry = pending_entry(request.session, sha256)
        outcome = calibrate_upload(request.user, entry["fields"], entry["content"], entry["name"])
    except DomainError as error:
        existing = getattr(error, "existing_id", None)
        context = {
            "error": error,
            "status": error.http_status,
            "existing_url": reverse("followup-point", args=[existing]) if existing else "",
        }
        return render(request, "error.html", context, status=error.http_status)
    forget_pending(request.session, sha256)
    return _result_page(request, outcome, None, entry["content"], entry["name"])


@login_required
def batch_upload(request):
    """GET/POST /batches/new/: many catalogs at once; answers with the batch's live page."""
    form = BatchForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                batch = submit_batch(
                    observatory=current_observatory(request.user),
                    uploads=data["files"],
                    fields=data["fields"],
                    dry_run=data["dry_run"],
                )
            except DomainError as error:
                form.add_error(None, error.message)
                status = error.http_status
            else:
                return redirect("batch-page", pk=batch.pk)
    return render(request, "calibration/batch_upload.html", {"form": form}, status=status)


def _viewable_point(request, pk: int) -> FollowupPoint:
    point = get_object_or_404(FollowupPoint.objects.select_related("alert", "observatory"), pk=pk)
    if point.hidden and not may_change(request.user, point):
        raise Http404("No such follow-up point.")
    return point


def point_plot(request, pk: int):
    """GET /followup_plot/<id>.png: the calibration diagnostics of a stored point."""
    point = _viewable_point(request, pk)
    if not point.details.get("stars"):
        raise Http404("This point has no calibration details (imported from the old server).")
    response = HttpResponse(calibration_png(point.details), content_type="image/png")
    response["Cache-Control"] = "public, max-age=3600"
    return response


def point_detail(request, pk: int):
    """GET /followup_point/<id>/: the numbers and the interactive plot of a stored point."""
    point = _viewable_point(request, pk)
    figure = figure_json(point.details) if point.details.get("stars") else None
    return render(
        request,
        "calibration/point.html",
        {
            "point": point,
            "facts": calibration_facts(point_values(point), point.alert),
            "figure": figure,
            "lightcurve_url": lightcurve_url(request, point.alert_id),
            "may_change": may_change(request.user, point),
        },
    )


@require_POST
@login_required
def point_restore(request, pk: int):
    """POST /followup_point/<id>/restore: the owner undoes a deletion within minutes of it."""
    try:
        point = restore_point(request.user, pk)
    except DomainError as error:
        point = _viewable_point(request, pk)
        context = deleted_context(request, point, error=error)
        return render(request, "calibration/deleted.html", context, status=error.http_status)
    messages.success(request, f"Follow-up {point.pk} restored to the light curve.")
    return redirect("followup-point", pk=point.pk)
