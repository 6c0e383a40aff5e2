"""Curators clean follow-up data here: search, filter, hide/restore, recalibrate."""

from django.contrib import admin, messages
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from alerts.services import refresh_followup_stats
from gsafollowup.errors import DomainError

from .models import FollowupPoint
from .services import recalibrate_point, set_hidden
from .uploads import catalog_path


@admin.register(FollowupPoint)
class FollowupPointAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "alert",
        "observatory",
        "mjd",
        "survey",
        "filter",
        "mag",
        "mag_err",
        "calib_err",
        "is_limit",
        "hidden",
        "imported",
        "created",
    )
    list_filter = ("filter", "survey", "is_limit", "hidden", "imported", "algorithm_version")
    search_fields = ("alert__ivorn", "observatory__name", "observatory__prefix", "comment", "catalog_name")
    list_select_related = ("alert", "observatory")
    raw_id_fields = ("alert", "observatory")
    readonly_fields = (
        "plot",
        "catalog",
        "catalog_sha256",
        "catalog_name",
        "catalog_size",
        "algorithm_version",
        "details",
        "legacy_id",
        "legacy_observatory",
        "imported",
        "hidden_at",
        "created",
        "updated",
    )
    actions = ["hide", "unhide", "recalibrate"]

    @admin.display(description="calibration plot")
    def plot(self, obj):
        if not obj.pk or not obj.details.get("stars"):
            return "none (no calibration details)"
        url = reverse("followup-plot", args=[obj.pk])
        return format_html('<a href="{}"><img src="{}" style="max-width:900px"></a>', url, url)

    @admin.display(description="kept catalog")
    def catalog(self, obj):
        if not obj.catalog_sha256:
            return "none"
        url = reverse("admin:calibration_followuppoint_catalog", args=[obj.pk])
        return format_html(
            '<a href="{}">download {}</a> ({} bytes)',
            url,
            obj.catalog_name or obj.catalog_sha256,
            obj.catalog_size,
        )

    def get_urls(self):
        extra = [
            path(
                "<int:pk>/catalog/",
                self.admin_site.admin_view(self.download_catalog),
                name="calibration_followuppoint_catalog",
            )
        ]
        return extra + super().get_urls()

    def download_catalog(self, request, pk):
        point = get_object_or_404(FollowupPoint, pk=pk)
        if not self.has_view_permission(request, point) or not point.catalog_sha256:
            raise Http404
        try:
            handle = open(catalog_path(point.catalog_sha256), "rb")  # noqa: SIM115 - FileResponse closes it
        except OSError:
            raise Http404("The kept catalog file is missing.") from None
        # The client's file name is only offered as the download name, never used as a path.
        return FileResponse(handle, as_attachment=True, filename=f"followup-{point.pk}.cat")

    def _each(self, request, queryset, action, done: str):
        count = 0
        for point in queryset.select_related("alert", "observatory"):
            try:
                action(point)
                count += 1
            except DomainError as error:
                self.message_user(request, f"Follow-up {point.pk}: {error.message}", messages.ERROR)
        self.message_user(request, f"{count} point(s) {done}.", messages.SUCCESS)

    # A curator's edit or delete in the admin is a write of points too: the alerts it touches
    # get their stored count and latest point again (the list sorts by them).
    def save_model(self, request, obj, form, change):
        before = FollowupPoint.objects.filter(pk=obj.pk).values_list("alert_id", flat=True).first()
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            refresh_followup_stats(obj.alert_id, before)

    def delete_model(self, request, obj):
        with transaction.atomic():
            super().delete_model(request, obj)
            refresh_followup_stats(obj.alert_id)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            alerts = set(queryset.values_list("alert_id", flat=True))
            super().delete_queryset(request, queryset)
            refresh_followup_stats(*alerts)

    @admin.action(description="Hide selected points")
    def hide(self, request, queryset):
        self._each(request, queryset, lambda p: set_hidden(p, True), "hidden")

    @admin.action(description="Restore (unhide) selected points")
    def unhide(self, request, queryset):
        self._each(request, queryset, lambda p: set_hidden(p, False), "restored")

    @admin.action(description="Recalibrate from kept catalogs")
    def recalibrate(self, request, queryset):
        self._each(request, queryset, recalibrate_point, "recalibrated")
