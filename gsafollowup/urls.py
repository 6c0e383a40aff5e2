"""URLs. Every public path also answers under /followup/, the prefix of the old server."""

from django.contrib import admin
from django.urls import include, path

from alerts import views as alert_views
from alerts.legacy import NewEventView
from calibration import views as calibration_views
from calibration.legacy import DelPointView, FollowupListView, UploadView
from gsafollowup.health import health
from jobs import views as job_views
from observers import views as observer_views
from observers.legacy import NewUserView

site = [
    path("", alert_views.home, name="home"),
    path("health", health, name="health"),
    path("login/", observer_views.login_view, name="login"),
    path("logout/", observer_views.logout_view, name="logout"),
    path("list_of_alerts", alert_views.alert_list, name="alert-list"),
    path("alerts/<int:pk>/", alert_views.alert_page, name="alert-page"),
    path("get_alert_lc", alert_views.lightcurve, name="lightcurve"),
    path("get_alert_lc_data", alert_views.lightcurve_data, name="lightcurve-data"),
    path("newevent/", alert_views.new_event, name="new-event"),
    path("newevent/position", alert_views.position_by_name, name="position-by-name"),
    path("cgi/newevent", NewEventView.as_view(), name="cgi-newevent"),
    path("cgi/upload", UploadView.as_view(), name="cgi-upload"),
    path("cgi/delpoint", DelPointView.as_view(), name="cgi-delpoint"),
    path("cgi/newuser", NewUserView.as_view(), name="cgi-newuser"),
    path("list_of_followups", FollowupListView.as_view(), name="followup-list"),
    path("upload/", calibration_views.upload, name="upload"),
    path("upload/store", calibration_views.store_dry_run, name="upload-store"),
    path("followup_plot/<int:pk>.png", calibration_views.point_plot, name="followup-plot"),
    path("followup_point/<int:pk>/", calibration_views.point_detail, name="followup-point"),
    path("batches/new/", calibration_views.batch_upload, name="batch-upload"),
    path("batches/<uuid:pk>/", job_views.batch_page, name="batch-page"),
    path("jobs/<uuid:pk>/", job_views.job_page, name="job-page"),
    path("followup_point/<int:pk>/restore", calibration_views.point_restore, name="followup-restore"),
    path("api/v1/", include("gsafollowup.api_urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include(site)),
    path("followup/", include((site, "followup"), namespace="followup")),
]

handler400 = "gsafollowup.http.bad_request"
