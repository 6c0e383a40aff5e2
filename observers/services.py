"""Creating observatories and their hashtags: shared by the admin and the management commands."""

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Observatory


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
) -> tuple[Observatory, str | None]:
    """Create an observatory with its own user account; return it and its first hashtag (or None)."""
    user = create_account(prefix)
    observatory = Observatory(
        name=name,
        prefix=prefix,
        longitude=longitude,
        latitude=latitude,
        altitude=altitude,
        filters=filters or [],
        contact=contact,
        active=active,
        user=user,
    )
    observatory.full_clean(exclude=["user"])
    observatory.save()
    return observatory, (observatory.issue_hashtag(label="first") if issue else None)
