from .auth import current_observatory


def observatory(request):
    """Expose the logged-in observatory (or None) to every template."""
    return {"current_observatory": current_observatory(getattr(request, "user", None))}
