"""Creating observatories and their hashtags: the one write path of the admin, the management
commands and POST /cgi/newuser."""

import logging
import math
import re

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from gsafollowup.errors import BadInput, Duplicate, Forbidden

from .models import PREFIX_RE, Observatory

log = logging.getLogger(__name__)


def create_account(prefix: str):
    """The Django user an observatory acts through: no password, it logs in by hashtag."""
    user = get_user_model()(username=f"obs-{prefix}"[:150])
    user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def create_observatory(
    *,
    name: str,
    prefix: str,
    longitude: float | None = None,
    latitude: float | None = None,
    altitude: float | None = None,
    filters: list[str] | None = None,
    contact: str = "",
    active: bool = True,
    issue: bool = True,
    user=None,
) -> tuple[Observatory, str | None]:
    """Create an observatory acting through ``user`` (a new account of its own by default);
    return it and its first hashtag (or None)."""
    observatory = Observatory(
        name=name,
        prefix=prefix,
        longitude=longitude,
        latitude=latitude,
        altitude=altitude,
        filters=filters or [],
        contact=contact,
        active=active,
    )
    observatory.full_clean(exclude=["user"])
    observatory.user = user if user is not None else create_account(prefix)
    observatory.save()
    return observatory, (observatory.issue_hashtag(label="first") if issue else None)


def is_curator(user) -> bool:
    """Curators are the active staff accounts."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def issue_curator_hashtag(user, prefix: str | None = None) -> str:
    """A new hashtag for a curator (staff) account, for scripts that act as a curator (/cgi/newuser).

    A hashtag belongs to an observatory, so a curator's hashtags belong to an observatory linked
    to the curator's own account, made here on first use and named after it. It only holds these
    hashtags: a curator acts for no observatory (``current_observatory``), so it never uploads,
    and the login form refuses its hashtags (the admin stays behind the curator's password).
    """
    if not is_curator(user):
        raise Forbidden(f"{user.get_username()} is not an active staff (curator) account.")
    observatory = Observatory.objects.filter(user=user).first()
    if observatory is None:
        prefix = prefix or re.sub(r"[^A-Za-z0-9.-]", "-", user.get_username())[:32].lstrip(".-") or "curator"
        try:
            observatory, _ = create_observatory(
                name=f"Curator {user.get_username()}"[:100], prefix=prefix, user=user, issue=False
            )
        except ValidationError as error:
            raise BadInput("; ".join(error.messages)) from None
        except IntegrityError:
            raise Duplicate(f"The prefix {prefix} is in use already; choose another.") from None
    return observatory.issue_hashtag(label=f"curator {user.get_username()}")


def _site(lon: str, lat: str) -> tuple[float, float]:
    """Longitude (East-positive, -180..360) and latitude (-90..90) in degrees, or BadInput."""
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError):
        raise BadInput("lon and lat must be decimal degrees.") from None
    if not (math.isfinite(lon_f) and math.isfinite(lat_f)):
        raise BadInput("lon and lat must be finite numbers.")
    if not -180.0 <= lon_f <= 360.0:
        raise BadInput("lon must be between -180 and 360 degrees (East-positive).")
    if not -90.0 <= lat_f <= 90.0:
        raise BadInput("lat must be between -90 and 90 degrees.")
    return lon_f, lat_f


def _taken(error: ValidationError) -> bool:
    """True when model validation failed only because a unique value is taken (a concurrent insert)."""
    found = getattr(error, "error_dict", {})
    return bool(found) and all(e.code == "unique" for errors in found.values() for e in errors)


ALLOW = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def register_observatory(
    *, curator, name: str, prefix: str, lon: str, lat: str, allow_upload: str
) -> tuple[Observatory, str]:
    """POST /cgi/newuser: a curator registers an instrument; returns it and its first hashtag.

    It may upload when ``allow_upload`` is 1; with 0 it is created inactive (a curator can
    activate it later) and its hashtag works from then on. Raises Forbidden, BadInput or
    Duplicate and then stores nothing.
    """
    if not is_curator(curator):
        raise Forbidden("Only a curator's hashtag may register an observatory.")
    name = " ".join((name or "").split())
    if not name or len(name) > 100 or not name.isprintable():
        raise BadInput("obsName must be 1 to 100 printable characters.")
    prefix = (prefix or "").strip()
    if not re.fullmatch(PREFIX_RE, prefix):
        raise BadInput("prefix: up to 32 letters, digits, '.' or '-', starting with a letter or digit.")
    longitude, latitude = _site(lon, lat)
    allowed = ALLOW.get((allow_upload or "").strip().lower())
    if allowed is None:
        raise BadInput("allow_upload must be 1 or 0.")
    # Hashtags start with their prefix: two prefixes differing only in case would read the same.
    if Observatory.objects.filter(prefix__iexact=prefix).exists():
        raise Duplicate(f"The prefix {prefix} is in use already.")
    if Observatory.objects.filter(name__iexact=name).exists():
        raise Duplicate("An observatory of this name exists already.")
    try:
        observatory, hashtag = create_observatory(
            name=name, prefix=prefix, longitude=longitude, latitude=latitude, active=allowed
        )
    except ValidationError as error:
        if _taken(error):
            raise Duplicate(f"The prefix {prefix} or the name is in use already.") from None
        raise BadInput(error.messages[0]) from None
    except IntegrityError:
        # A concurrent registration took the name or prefix between the checks and the insert
        # (or an account obs-<prefix> is left from an observatory whose prefix was changed).
        raise Duplicate(f"The prefix {prefix} is in use already.") from None
    log.info("curator %s registered observatory %s (%s)", curator.get_username(), prefix, observatory.pk)
    return observatory, hashtag
