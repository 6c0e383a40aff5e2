"""What every page of the site shares: the version, where the docs are, and the plot themes."""

import functools
import tomllib

from django.conf import settings

#: Layout colours of the plotly figures in each theme of the site (site.css has the same ones).
#: The page applies the theme the visitor chose, or the one ``prefers-color-scheme`` asks for.
PLOT_THEMES = {
    "light": {"paper": "#ffffff", "plot": "#ffffff", "font": "#1d2330", "grid": "#e5e7eb", "line": "#9ca3af"},
    "dark": {"paper": "#171c27", "plot": "#171c27", "font": "#e4e8f0", "grid": "#2e3646", "line": "#6b7689"},
    # Red light at the telescope: nothing brighter than a dim red, on black.
    "red": {"paper": "#000000", "plot": "#000000", "font": "#d03030", "grid": "#3a0a0a", "line": "#7a1a1a"},
}


@functools.cache
def version() -> str:
    """The project's version, from pyproject.toml (the one place it is written)."""
    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as handle:
            return tomllib.load(handle)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def site(request):
    """Template context of every page: version, plot themes."""
    return {"site_version": version(), "plot_themes": PLOT_THEMES}
