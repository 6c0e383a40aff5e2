from gsafollowup.http import url_under_prefix

from .auth import current_observatory


def observatory(request):
    """Expose the logged-in observatory (or None) and the login page under this prefix to every template."""
    return {
        "current_observatory": current_observatory(getattr(request, "user", None)),
        # Harvesters open /followup/ and follow the link "Login": it stays under their prefix.
        "login_url": url_under_prefix(request, "login"),
    }
