"""What is observed: alerts (transients) named by IVORN."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .ivorns import ivorn_key


def alert_name(ivorn: str) -> str:
    """A readable name: the last path element of the IVORN, e.g. ivo://asassn/ASASSN-14ae -> ASASSN-14ae."""
    rest = ivorn.split("://", 1)[-1].strip().strip("/")
    return rest.rsplit("/", 1)[-1].strip() or ivorn


class AlertQuerySet(models.QuerySet):
    def observed(self):
        """Alerts with at least one visible follow-up point."""
        return self.filter(nfollowup__gt=0)


class Alert(models.Model):
    """A transient to follow up; the IVORN is its unique name (it may contain spaces)."""

    ivorn = models.CharField(max_length=255, unique=True, verbose_name="IVORN")
    ivorn_key = models.CharField(
        max_length=255, db_index=True, editable=False, help_text="The IVORN as read: twins share it"
    )
    ra = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(360.0)], help_text="Degrees")
    dec = models.FloatField(
        validators=[MinValueValidator(-90.0), MaxValueValidator(90.0)],
        help_text="Degrees",
        # Cone searches and the 1.5" neighbour check narrow by a Dec band first.
        db_index=True,
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

    # The latest visible follow-up point and how many there are, stored so that the list sorts
    # and pages 50,000 alerts by index instead of counting points per request. Written only by
    # alerts.services.refresh_followup_stats, which the one write path of points calls.
    nfollowup = models.PositiveIntegerField(default=0, editable=False, help_text="Visible follow-up points")
    latest_mjd = models.FloatField(null=True, blank=True, editable=False, help_text="MJD of the latest point")
    latest_mag = models.FloatField(null=True, blank=True, editable=False)
    latest_filter = models.CharField(max_length=10, blank=True, editable=False)
    latest_is_limit = models.BooleanField(null=True, blank=True, editable=False)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The list's sorts, each with the id that breaks ties in the same direction, so that
            # a deep page is an index range scan (PostgreSQL reads these indexes backwards too).
            models.Index(fields=["ivorn", "id"], name="alert_sort_name"),
            models.Index(fields=["ra", "id"], name="alert_sort_ra"),
            models.Index(fields=["dec", "id"], name="alert_sort_dec"),
            models.Index(fields=["nfollowup", "id"], name="alert_sort_points"),
            # Nullable: ascending is NULLS LAST on PostgreSQL already; the descending NULLS LAST
            # sorts get their own indexes in migration 0004 (PostgreSQL only: SQLite has no
            # NULLS LAST in an index).
            models.Index(fields=["published", "id"], name="alert_sort_published"),
            models.Index(fields=["latest_mjd", "id"], name="alert_sort_latest"),
        ]
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

    @property
    def short_ivorn(self) -> str:
        """The IVORN as lists show it: without ivo:// (Gaia16aye, asassn/ASASSN-14fv)."""
        return self.ivorn.removeprefix("ivo://")


class Alias(models.Model):
    """Another name of an alert (TNS 2024abc, Gaia16aye, ZTF24aaabbbb, a merged alert's IVORN).

    Names are cleaned like IVORNs (NFC, nothing invisible) and ``key`` is their twin key, unique,
    so that no two aliases, whatever their case or look-alike letters, can name two alerts.
    """

    class Source(models.TextChoices):
        CURATOR = "curator", "curator"
        TNS = "tns", "TNS"
        GAIA = "gaia", "Gaia Science Alerts"
        GCN = "gcn", "GCN"
        SURVEY = "survey", "survey id (TNS internal name)"
        MERGE = "merge", "IVORN of a merged alert"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=255, unique=True)
    key = models.CharField(max_length=255, unique=True, editable=False, help_text="The name as read")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CURATOR)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["alert", "name"]
        verbose_name_plural = "aliases"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.key = ivorn_key(self.name)
        super().save(*args, **kwargs)


class AlertMerge(models.Model):
    """One curator's merge of an alert into another: what moved, so that it can be undone."""

    target = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="merges_in")
    merged_id = models.PositiveBigIntegerField(help_text="The id the merged alert had")
    merged_ivorn = models.CharField(max_length=255)
    #: The merged alert's own fields, so that undo brings it back as it was (same id).
    merged_fields = models.JSONField()
    moved = models.JSONField(help_text="Ids that moved: points, aliases, Gaia points, harvested records")
    ivorn_alias = models.CharField(max_length=255, help_text="The alias made from the merged IVORN")
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    undone = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.merged_ivorn} into {self.target_id}"


class HarvestedObject(models.Model):
    """The last harvested record of an object in a source (a TNS row, a Gaia index row, a GCN packet).

    Kept whether or not it became an alert: the new-event form fills coordinates from it, and
    ``digest`` (of the row as read) lets a re-harvest of the same file write nothing.
    """

    class Source(models.TextChoices):
        TNS = "tns", "TNS"
        GAIA = "gaia", "Gaia Science Alerts"
        GCN = "gcn", "GCN notice"

    source = models.CharField(max_length=8, choices=Source.choices)
    name = models.CharField(max_length=255, help_text="TNS name, Gaia name, or the GCN packet's IVORN")
    ra = models.FloatField(help_text="Degrees")
    dec = models.FloatField(help_text="Degrees")
    discovered = models.DateTimeField(null=True, blank=True, help_text="Discovery or trigger time (UTC)")
    mag = models.FloatField(null=True, blank=True, help_text="Discovery or alert magnitude")
    kind = models.CharField(max_length=64, blank=True, help_text="TNS type, Gaia class, GCN packet type")
    data = models.JSONField(help_text="The row or packet fields as read")
    digest = models.CharField(max_length=64, editable=False)
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="harvested"
    )
    harvested = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source", "name"]
        constraints = [models.UniqueConstraint(fields=["source", "name"], name="unique_harvested_name")]

    def __str__(self) -> str:
        return f"{self.source}:{self.name}"


class GaiaPoint(models.Model):
    """One Gaia G magnitude of an alert from its Gaia Science Alerts light curve.

    A series of its own: never a follow-up point and never used in calibration. ``mag_err`` is
    the approximation of the Gaia G error from the magnitude (see alerts.sources.gaia), so
    ``err_approximate`` says it is not a measured error.
    """

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="gaia_points")
    jd_tcb = models.FloatField(help_text="As published: Julian Date, TCB")
    mjd = models.FloatField(help_text="MJD (UTC) converted from jd_tcb with astropy")
    mag = models.FloatField(help_text="Gaia G")
    mag_err = models.FloatField(help_text="Approximate: from the magnitude, not measured")
    err_approximate = models.BooleanField(default=True)

    class Meta:
        ordering = ["alert", "mjd"]
        constraints = [models.UniqueConstraint(fields=["alert", "jd_tcb"], name="unique_gaia_point")]

    def __str__(self) -> str:
        return f"{self.alert_id} G={self.mag:.2f} at MJD {self.mjd:.5f}"
