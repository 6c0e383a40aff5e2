from django import forms
from django.contrib import admin

from gsafollowup.errors import BadInput

from .models import Alert
from .services import clean_ivorn, clean_published, twin_of


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


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    form = AlertAdminForm
    list_display = ("id", "ivorn", "ra", "dec", "published", "created_by")
    search_fields = ("ivorn", "comment")
    list_filter = (("published", admin.DateFieldListFilter),)
    date_hierarchy = "published"
    ordering = ("-published", "-id")
    readonly_fields = ("created_by", "created", "updated")

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
