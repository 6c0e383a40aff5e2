"""Routes of the REST API, included at /api/v1/ (and /followup/api/v1/)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from alerts import api as alerts
from calibration import api as calibration
from gsafollowup import schema  # noqa: F401 (registers the hashtag security scheme)
from observers import api as observers

urlpatterns = [
    path("alerts/", alerts.AlertListView.as_view(), name="api-alerts"),
    path("alerts/<int:pk>/", alerts.AlertDetailView.as_view(), name="api-alert"),
    path("alerts/<int:pk>/lightcurve/", alerts.LightCurveView.as_view(), name="api-alert-lightcurve"),
    path(
        "alerts/<int:pk>/lightcurve/<str:fmt>/",
        alerts.LightCurveDownloadView.as_view(),
        name="api-alert-lightcurve-download",
    ),
    path("points/", calibration.PointListView.as_view(), name="api-points"),
    path("points/<int:pk>/", calibration.PointDetailView.as_view(), name="api-point"),
    path("surveys/", calibration.SurveyListView.as_view(), name="api-surveys"),
    path("observatories/me", observers.MyObservatoryView.as_view(), name="api-observatory-me"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
