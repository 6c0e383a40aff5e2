from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from gsafollowup.errors import BadInput, DomainError

from .models import Alert, AlertMerge, Alias, GaiaPoint, HarvestedObject
from .services import check_alias, clean_ivorn, clean_published, merge_alerts, twin_of, undo_merge


class AlertAdminForm(forms.ModelForm):
    """The admin's alert form, with the checks of every other way of creating an alert."""

    class Meta:
        model = Alert
        fields = ("ivorn", "ra", "dec", "url", "published", "comment")

    def clean_ivorn(self):
        try:
            ivorn = clean_ivorn(self.cleaned_data["ivorn"])
        except BadInput as error:
            raise forms.ValidationError(error.message) from None
        twin = twin_of(ivorn)
        if twin is not None and twin.pk != self.instance.pk:
            raise forms.ValidationError(f"It reads the same as {twin.ivorn} (id {twin.pk}).")
        return ivorn

    def clean_published(self):
        published = self.cleaned_data.get("published")
        if published is None:
            return None  # a curator may unpublish an alert
        try:
            return clean_published(published)
        except BadInput as error:
            raise forms.ValidationError(error.message) from None


class AliasForm(forms.ModelForm):
    """An alias with the checks of add_alias: cleaned like an IVORN, no other alert's name."""

    class Meta:
        model = Alias
        fields = ("alert", "name", "source")

    def clean(self):
        data = super().clean()
        alert, name = data.get("alert"), data.get("name")
        if alert is not None and name:
            try:
                data["name"] = check_alias(alert, name)
            except DomainError as error:
                raise forms.ValidationError(error.message) from None
        return data


class AliasInline(admin.TabularInline):
    model = Alias
    form = AliasForm
    fields = ("name", "source", "created")
    readonly_fields = ("created",)
    extra = 1


class MergeForm(forms.Form):
    """Which of the two selected alerts is kept; the other's points and names move to it."""

    keep = forms.ModelChoiceField(queryset=Alert.objects.none(), widget=forms.RadioSelect, empty_label=None)

    def __init__(self, *args, alerts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].queryset = alerts


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    form = AlertAdminForm
    list_display = ("id", "ivorn", "ra", "dec", "published", "created_by")
    search_fields = ("ivorn", "comment", "aliases__name")
    list_filter = (("published", admin.DateFieldListFilter),)
    date_hierarchy = "published"
    ordering = ("-published", "-id")
    readonly_fields = ("created_by", "created", "updated")
    inlines = [AliasInline]
    actions = ["merge"]

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Merge the two selected alerts (one object under two names)")
    def merge(self, request, queryset):
        if queryset.count() != 2:
            self.message_user(request, "Select exactly two alerts to merge.", messages.ERROR)
            return None
        alerts = queryset.order_by("pk")
        form = MergeForm(request.POST if "apply" in request.POST else None, alerts=alerts)
        if form.is_valid():
            keep = form.cleaned_data["keep"]
            other = alerts.exclude(pk=keep.pk).get()
            try:
                record = merge_alerts(keep, other, user=request.user)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
                return None
            moved = record.moved
            self.message_user(
                request,
                f"Merged {record.merged_ivorn} into {keep.ivorn}: {len(moved['points'])} point(s) and "
                f"{len(moved['aliases'])} alias(es) moved; undo it under Alert merges.",
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Merge two alerts",
            "form": form,
            "alerts": alerts,
            "action": "merge",
            "opts": self.model._meta,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/alerts/merge.html", context)


@admin.register(Alias)
class AliasAdmin(admin.ModelAdmin):
    form = AliasForm
    list_display = ("name", "alert", "source", "created")
    list_filter = ("source",)
    search_fields = ("name", "alert__ivorn")
    autocomplete_fields = ("alert",)
    readonly_fields = ("created",)

    def get_changeform_initial_data(self, request):
        # The 409 of a nearby alert names the alert and the new name: /admin/alerts/alias/add/?alert=5&name=X
        return {key: request.GET[key] for key in ("alert", "name") if key in request.GET}


@admin.register(AlertMerge)
class AlertMergeAdmin(admin.ModelAdmin):
    list_display = ("merged_ivorn", "merged_id", "target", "merged_by", "created", "undone")
    list_filter = ("undone",)
    search_fields = ("merged_ivorn", "target__ivorn")
    readonly_fields = [f.name for f in AlertMerge._meta.fields]
    actions = ["undo"]

    def has_add_permission(self, request):
        # Merges are made by the action on the alert list, which records what moved.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Undo the selected merges (the merged alert comes back with its id)")
    def undo(self, request, queryset):
        for record in queryset.order_by("-created"):
            try:
                restored = undo_merge(record, user=request.user)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"Restored {restored.ivorn} (id {restored.pk}).", messages.SUCCESS)


@admin.register(HarvestedObject)
class HarvestedObjectAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "kind", "ra", "dec", "mag", "discovered", "alert", "harvested")
    list_filter = ("source", "kind")
    search_fields = ("name",)
    readonly_fields = [f.name for f in HarvestedObject._meta.fields]

    def has_add_permission(self, request):
        return False  # harvest_alerts writes them


@admin.register(GaiaPoint)
class GaiaPointAdmin(admin.ModelAdmin):
    list_display = ("alert", "mjd", "mag", "mag_err", "err_approximate")
    search_fields = ("alert__ivorn",)
    readonly_fields = [f.name for f in GaiaPoint._meta.fields]

    def has_add_permission(self, request):
        return False  # harvest_alerts writes them
