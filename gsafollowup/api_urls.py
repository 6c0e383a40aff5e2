"""Routes of the REST API, included at /api/v1/ (and /followup/api/v1/)."""

from django.urls import path, re_path, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from alerts import api as alerts
from calibration import api as calibration
from gsafollowup import schema  # noqa: F401 (registers the hashtag security scheme)
from gsafollowup.api_index import ApiIndexView
from gsafollowup.errors import NotFound
from gsafollowup.http import json_error
from jobs import api as jobs
from observers import api as observers


@csrf_exempt  # it changes nothing; a JSON 404 is the answer for every method
def api_not_found(request):
    """The JSON error body for unknown API paths, whatever the method; names the route meant."""
    path = request.path
    other = path[:-1] if path.endswith("/") else path + "/"
    match = resolve(other)
    hint = f"did you mean {other[:45]}?" if match.func is not api_not_found else "see /api/v1/docs/."
    return json_error(NotFound(f"No API route {path[:45]}; {hint}"))


urlpatterns = [
    path("", ApiIndexView.as_view(), name="api-index"),
    path("alerts/", alerts.AlertListView.as_view(), name="api-alerts"),
    path("alerts/<int:pk>/", alerts.AlertDetailView.as_view(), name="api-alert"),
    path("alerts/<int:pk>/aliases/", alerts.AliasCreateView.as_view(), name="api-alert-aliases"),
    path("alerts/<int:pk>/lightcurve/", alerts.LightCurveView.as_view(), name="api-alert-lightcurve"),
    path(
        "alerts/<int:pk>/lightcurve/<str:fmt>/",
        alerts.LightCurveDownloadView.as_view(),
        name="api-alert-lightcurve-download",
    ),
    path("points/", calibration.PointListView.as_view(), name="api-points"),
    path("points/<int:pk>/", calibration.PointDetailView.as_view(), name="api-point"),
    path("batches/", calibration.BatchCreateView.as_view(), name="api-batches"),
    path("batches/<uuid:pk>/", jobs.BatchDetailView.as_view(), name="api-batch"),
    path("jobs/<uuid:pk>/", jobs.JobDetailView.as_view(), name="api-job"),
    path("surveys/", calibration.SurveyListView.as_view(), name="api-surveys"),
    path("observatories/me", observers.MyObservatoryView.as_view(), name="api-observatory-me"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Anything else under /api/v1/ (an id that is not a positive integer, a typo) is a JSON 404.
    re_path(r"^.*$", api_not_found),
]
