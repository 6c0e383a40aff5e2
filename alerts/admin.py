from django.contrib import admin

from .models import Alert


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
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
