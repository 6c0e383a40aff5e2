"""Legacy endpoints: POST /cgi/upload, POST /cgi/delpoint, GET /list_of_followups."""

from django.contrib.auth.views import redirect_to_login
from rest_framework.parsers import FormParser, MultiPartParser

from gsafollowup.errors import NotAuthenticated
from gsafollowup.http import LegacyView, page_visit, wants_json
from observers.auth import path_without_hashtag

from .forms import UploadSerializer, calibrate_upload
from .models import FollowupPoint
from .presenters import deleted_context, result_context, upload_payload
from .services import hide_point


class UploadView(LegacyView):
    """POST /cgi/upload: calibrate an uploaded catalog; 201 stored, 200 dry run."""

    parser_classes = [MultiPartParser, FormParser]

    def post(self, request):
        serializer = UploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = calibrate_upload(request.user, data)
        status = 200 if outcome.dry_run else 201
        if data["output_format"] == "json":
            payload = upload_payload(request, outcome, data["no_plot"])
            return self.respond(request, payload, "", {}, status=status)
        context = result_context(request, outcome, data["no_plot"])
        return self.respond(request, {}, "calibration/result.html", context, status=status)


class DelPointView(LegacyView):
    """POST /cgi/delpoint: hide a point (owner or curator); recoverable in the admin."""

    parser_classes = [MultiPartParser, FormParser]

    def post(self, request):
        point = hide_point(request.user, request.data.get("followupid"))
        payload = {"followup_id": point.pk, "hidden": True}
        return self.respond(request, payload, "calibration/deleted.html", deleted_context(request, point))


def followup_row(point: FollowupPoint) -> dict:
    return {
        "followup_id": point.pk,
        "alert_id": point.alert_id,
        "alert_name": point.alert.ivorn,
        "mjd": point.mjd,
        "filter": point.filter,
        "survey": point.survey,
        "mag": point.mag,
        "mag_err": point.mag_err,
        "caliberr": point.calib_err,
        "total_err": point.total_err,
        "is_limit": point.is_limit,
        "observatory": point.observatory.name,
        "created": point.created.strftime("%Y-%m-%dT%H:%M:%S"),
    }


class FollowupListView(LegacyView):
    """GET /list_of_followups: the caller's stored points (a curator sees everybody's)."""

    def handle_exception(self, exc):
        # A person opening the page without logging in goes to the login form, as on /upload/;
        # scripts (no browser headers, or outputFormat=json) keep the legacy 401 line.
        request = self.request
        if isinstance(exc, NotAuthenticated) and page_visit(request) and not wants_json(request):
            return redirect_to_login(path_without_hashtag(request))
        return super().handle_exception(exc)

    def get(self, request):
        points = (
            FollowupPoint.objects.visible().select_related("alert", "observatory").order_by("-created", "-pk")
        )
        if not request.user.is_staff:
            points = points.filter(observatory__user=request.user)
        rows = [followup_row(p) for p in points[:5000]]
        if wants_json(request):
            return self.respond(request, rows, "", {})
        return self.respond(request, {}, "calibration/followups.html", {"rows": rows})
