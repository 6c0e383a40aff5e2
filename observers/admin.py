"""Curators manage observatories and hashtags here; digests are never shown."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.html import format_html

from .models import Hashtag, HashtagFailure, Observatory, hashtag_digest
from .services import create_account


class HashtagInline(admin.TabularInline):
    model = Hashtag
    extra = 0
    fields = ("label", "created", "last_used_at", "revoked_at")
    readonly_fields = ("created", "last_used_at")
    can_delete = False


class ObservatoryForm(forms.ModelForm):
    legacy_hashtag = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Optional: an existing legacy hashtag to store unchanged (only its digest is kept).",
    )

    class Meta:
        model = Observatory
        fields = ("name", "prefix", "longitude", "latitude", "altitude", "filters", "contact", "active")

    def clean_legacy_hashtag(self):
        value = self.cleaned_data["legacy_hashtag"]
        if value and (len(value) > 200 or any(c.isspace() for c in value)):
            raise ValidationError("A hashtag is a single word of at most 200 characters.")
        if value and Hashtag.objects.filter(digest=hashtag_digest(value)).exists():
            raise ValidationError("This hashtag is stored already.")
        return value


@admin.register(Observatory)
class ObservatoryAdmin(admin.ModelAdmin):
    form = ObservatoryForm
    list_display = (
        "name",
        "prefix",
        "longitude",
        "latitude",
        "altitude",
        "filter_list",
        "active",
        "n_hashtags",
    )
    list_filter = ("active",)
    search_fields = ("name", "prefix", "contact")
    readonly_fields = ("user", "created", "updated")
    inlines = [HashtagInline]
    actions = ["issue_hashtag", "revoke_hashtags"]

    @admin.display(description="filters")
    def filter_list(self, obj):
        return ", ".join(obj.filters or [])

    @admin.display(description="active hashtags")
    def n_hashtags(self, obj):
        return obj.hashtags.filter(revoked_at__isnull=True).count()

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            if not change:
                obj.user = create_account(obj.prefix)
            super().save_model(request, obj, form, change)
            legacy = form.cleaned_data.get("legacy_hashtag")
            if legacy:
                obj.import_hashtag(legacy)
                self.message_user(request, "The legacy hashtag was stored (digest only).", messages.SUCCESS)

    @admin.action(description="Issue a new hashtag (shown once)")
    def issue_hashtag(self, request, queryset):
        for observatory in queryset:
            clear = observatory.issue_hashtag(label=f"issued by {request.user.get_username()}")
            self.message_user(
                request,
                format_html(
                    "New hashtag for {}: <code>{}</code> (copy it now; it is not shown again)",
                    observatory.name,
                    clear,
                ),
                messages.WARNING,
            )

    @admin.action(description="Revoke all hashtags")
    def revoke_hashtags(self, request, queryset):
        count = 0
        for hashtag in Hashtag.objects.filter(observatory__in=queryset, revoked_at__isnull=True):
            hashtag.revoke()
            count += 1
        self.message_user(request, f"Revoked {count} hashtag(s).", messages.SUCCESS)


@admin.register(Hashtag)
class HashtagAdmin(admin.ModelAdmin):
    list_display = ("observatory", "label", "created", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("observatory__name", "observatory__prefix", "label")
    fields = ("observatory", "label", "created", "last_used_at", "revoked_at")
    readonly_fields = ("observatory", "created", "last_used_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        # New hashtags are issued from the observatory page so their clear value is shown once.
        return False

    @admin.action(description="Revoke selected hashtags")
    def revoke(self, request, queryset):
        for hashtag in queryset:
            hashtag.revoke()
        self.message_user(request, f"Revoked {queryset.count()} hashtag(s).", messages.SUCCESS)


@admin.register(HashtagFailure)
class HashtagFailureAdmin(admin.ModelAdmin):
    """Wrong-hashtag counts per client address; deleting a row lifts its lock-out at once."""

    list_display = ("address", "count", "window_start")
    search_fields = ("address",)
    readonly_fields = ("address", "count", "window_start")
    ordering = ("-window_start",)

    def has_add_permission(self, request):
        return False
