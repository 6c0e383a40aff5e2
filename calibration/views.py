"""Web pages of calibration: the upload form and its result, and a stored point's plot and page."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from gsafollowup.errors import DomainError
from observers.auth import current_observatory

from .batches import submit_batch
from .forms import BatchForm, UploadForm, calibrate_upload
from .models import FollowupPoint
from .plots import calibration_png
from .presenters import figure_json, lightcurve_url, result_context
from .services import may_change


@login_required
def upload(request):
    """GET/POST /upload/: the web form; the result page shows the numbers and the plot."""
    # "Upload for this alert" on an alert's page links here with ?EventID=.
    initial = {"EventID": request.GET.get("EventID", "")[:255]}
    form = UploadForm(request.POST or None, request.FILES or None, initial=initial)
    status = 200
    if request.method == "POST":
        # A refused upload answers with the status the legacy endpoint gives (400, 404, 409, 422).
        status = 400
        if form.is_valid():
            try:
                outcome = calibrate_upload(request.user, form.cleaned_data)
            except DomainError as error:
                form.add_error(None, error.message)
                status = error.http_status
            else:
                status = 200 if outcome.dry_run else 201
                return render(
                    request, "calibration/result.html", result_context(request, outcome, False), status=status
                )
    return render(request, "calibration/upload.html", {"form": form}, status=status)


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
            "figure": figure,
            "lightcurve_url": lightcurve_url(request, point.alert_id),
            "may_change": may_change(request.user, point),
        },
    )
