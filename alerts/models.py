"""What is observed: alerts (transients) named by IVORN."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from .ivorns import ivorn_key


def alert_name(ivorn: str) -> str:
    """A readable name: the last path element of the IVORN, e.g. ivo://asassn/ASASSN-14ae -> ASASSN-14ae."""
    rest = ivorn.split("://", 1)[-1].strip().strip("/")
    return rest.rsplit("/", 1)[-1].strip() or ivorn


class AlertQuerySet(models.QuerySet):
    def with_followup_stats(self):
        """Annotate nfollowup (visible points) and the latest visible point's magnitude and band."""
        from calibration.models import FollowupPoint

        latest = FollowupPoint.objects.visible().filter(alert=OuterRef("pk")).order_by("-mjd", "-pk")
        return self.annotate(
            nfollowup=Count("followups", filter=Q(followups__hidden=False)),
            latest_mag=Subquery(latest.values("mag")[:1]),
            latest_filter=Subquery(latest.values("filter")[:1]),
            latest_is_limit=Subquery(latest.values("is_limit")[:1]),
            latest_mjd=Subquery(latest.values("mjd")[:1]),
        )


class Alert(models.Model):
    """A transient to follow up; the IVORN is its unique name (it may contain spaces)."""

    ivorn = models.CharField(max_length=255, unique=True, verbose_name="IVORN")
    ivorn_key = models.CharField(
        max_length=255, db_index=True, editable=False, help_text="The IVORN as read: twins share it"
    )
    ra = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(360.0)], help_text="Degrees")
    dec = models.FloatField(
        validators=[MinValueValidator(-90.0), MaxValueValidator(90.0)], help_text="Degrees"
    )
    url = models.URLField(max_length=500, blank=True, help_text="Where the alert was announced")
    published = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        default=timezone.now,
        help_text="Publication time (UTC); empty = not published",
    )
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts_created",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(ra__gte=0) & Q(ra__lte=360), name="alert_ra_range"),
            models.CheckConstraint(condition=Q(dec__gte=-90) & Q(dec__lte=90), name="alert_dec_range"),
        ]

    def __str__(self) -> str:
        return self.ivorn

    def save(self, *args, **kwargs):
        # Derived from the IVORN whoever saves (services, admin, importers), so twins always match.
        self.ivorn_key = ivorn_key(self.ivorn)
        if kwargs.get("update_fields") is not None and "ivorn" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "ivorn_key"}
        super().save(*args, **kwargs)

    @property
    def name(self) -> str:
        return alert_name(self.ivorn)
