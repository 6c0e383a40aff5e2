"""Who may upload: observatories (sites, filters) and their hashtags (stored as digests only)."""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

PREFIX_RE = r"^[A-Za-z0-9][A-Za-z0-9.-]{0,31}$"
HASHTAG_RE = re.compile(r"^(?P<prefix>[A-Za-z0-9][A-Za-z0-9.-]{0,31})_(?P<secret>[0-9a-f]{32})$")


def normalise_longitude(lon: float) -> float:
    """East-positive longitude in [-180, 180); accepts -180..360."""
    if not -180.0 <= lon <= 360.0:
        raise ValidationError(f"Longitude {lon} is outside -180..360 degrees.")
    return ((lon + 180.0) % 360.0) - 180.0


def hashtag_digest(hashtag: str) -> str:
    """The stored form of a hashtag: hex SHA-256 (hashtags carry 128 random bits)."""
    return hashlib.sha256(hashtag.encode("utf-8")).hexdigest()


class Observatory(models.Model):
    """An observatory or instrument that uploads photometry, acting through a linked Django user."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(
        max_length=32,
        unique=True,
        validators=[RegexValidator(PREFIX_RE, "Letters, digits, '.' and '-' only (up to 32).")],
        help_text="Short code used at the start of this observatory's hashtags, e.g. SAAO1m.",
    )
    longitude = models.FloatField(
        null=True, blank=True, help_text="Degrees, East-positive; -180..360 accepted and normalised."
    )
    latitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-90.0), MaxValueValidator(90.0)]
    )
    altitude = models.FloatField(null=True, blank=True, help_text="Metres above sea level.")
    filters = models.JSONField(
        default=list, blank=True, help_text='Filters of the instrument, e.g. ["V", "R"].'
    )
    contact = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="observatory",
        help_text="The account this observatory acts through (sessions, permissions, admin).",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "observatories"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if self.longitude is not None:
            self.longitude = normalise_longitude(self.longitude)
        super().save(*args, **kwargs)

    def clean(self):
        if self.longitude is not None:
            self.longitude = normalise_longitude(self.longitude)
        if not isinstance(self.filters, list) or not all(isinstance(f, str) for f in self.filters):
            raise ValidationError({"filters": "Give a list of filter names."})

    def issue_hashtag(self, label: str = "") -> str:
        """Create a new hashtag and return it in clear: the only time it is ever visible."""
        clear = f"{self.prefix}_{secrets.token_hex(16)}"
        Hashtag.objects.create(observatory=self, digest=hashtag_digest(clear), label=label)
        return clear

    def import_hashtag(self, clear: str, label: str = "imported legacy hashtag") -> "Hashtag":
        """Store an existing (legacy) hashtag string unchanged, so old scripts keep working."""
        clear = clear.strip()
        if not clear or len(clear) > 200 or any(c.isspace() for c in clear):
            raise ValidationError("A hashtag is a single word of at most 200 characters.")
        return Hashtag.objects.create(observatory=self, digest=hashtag_digest(clear), label=label)


class HashtagQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(
            revoked_at__isnull=True, observatory__active=True, observatory__user__is_active=True
        )

    def find(self, clear: str) -> "Hashtag | None":
        """The usable hashtag with this clear value, or None."""
        if not clear or len(clear) > 200:
            return None
        digest = hashtag_digest(clear)
        found = self.usable().select_related("observatory__user").filter(digest=digest).first()
        # The lookup is by digest; compare again in constant time so no path depends on timing.
        if found is not None and hmac.compare_digest(found.digest, digest):
            return found
        return None


class Hashtag(models.Model):
    """A secret key of one observatory; only its SHA-256 digest is stored."""

    observatory = models.ForeignKey(Observatory, on_delete=models.CASCADE, related_name="hashtags")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    label = models.CharField(max_length=100, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = HashtagQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"{self.observatory.prefix} hashtag #{self.pk} ({state})"

    def revoke(self) -> None:
        """Make this hashtag unusable from now on."""
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    def touch(self) -> None:
        """Record a use, at most once a minute to keep writes rare."""
        now = timezone.now()
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() > 60:
            Hashtag.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class HashtagFailureQuerySet(models.QuerySet):
    def locked_out(self, address: str, limit: int, window: int) -> bool:
        """True when this address sent ``limit`` wrong hashtags within its current window."""
        start = timezone.now() - timedelta(seconds=window)
        return self.filter(address=address, window_start__gt=start, count__gte=limit).exists()

    def record(self, address: str, window: int) -> None:
        """Count one wrong hashtag from this address; the window restarts with the first failure.

        Every step is one statement the database applies atomically, so concurrent workers never
        lose a count (a cache's get-then-set across processes does).
        """
        now = timezone.now()
        start = now - timedelta(seconds=window)
        for _ in range(3):
            if self.filter(address=address, window_start__gt=start).update(count=F("count") + 1):
                return
            # A window that is over restarts. Of concurrent restarts only the first matches: the
            # others see its fresh window_start when they get the row, and count in it above.
            if self.filter(address=address, window_start__lte=start).update(count=1, window_start=now):
                return
            try:
                with transaction.atomic():
                    # A new address: windows that are over are dropped, so the table holds about
                    # the addresses of one window.
                    self.filter(window_start__lte=start).delete()
                    self.create(address=address, count=1, window_start=now)
                return
            except IntegrityError:
                continue  # another worker created it just now: count in its row
        raise RuntimeError(f"could not count a wrong hashtag for {address}")


class HashtagFailure(models.Model):
    """Wrong hashtags from one client address (an IPv6 /64 counts as one) in a fixed window."""

    address = models.CharField(max_length=64, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_start = models.DateTimeField(db_index=True)

    objects = HashtagFailureQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.address}: {self.count} wrong hashtag(s) since {self.window_start:%Y-%m-%d %H:%M:%S}"
