"""A static-files finder serving plotly.js from the installed plotly package.

The light-curve page must work without internet, so the project serves plotly.js itself.
Taking the file from the pinned Python package keeps the browser library at exactly the
version whose figure schema ``plotly.graph_objects`` writes, and keeps a 4.8 MB file out of
git. runserver (whitenoise with finders) and collectstatic both go through this finder.
"""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PREFIX = "vendor/plotly"
STATIC_PATH = f"{PREFIX}/{PLOTLY_JS.name}"


class PlotlyFinder(BaseFinder):
    """Finds ``vendor/plotly/plotly.min.js`` and nothing else of the plotly package."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=PLOTLY_JS.parent)
        # collectstatic and whitenoise put a storage's files under its prefix.
        self.storage.prefix = PREFIX

    def check(self, **kwargs):
        if not PLOTLY_JS.is_file():
            message = f"plotly.js is missing from the plotly package: {PLOTLY_JS}"
            return [Error(message, id="gsafollowup.E001")]
        return []

    def find(self, path, find_all=False, **kwargs):
        found = str(PLOTLY_JS) if path == STATIC_PATH and PLOTLY_JS.is_file() else None
        if find_all:
            return [found] if found else []
        return found

    def list(self, ignore_patterns):
        if PLOTLY_JS.is_file():
            yield PLOTLY_JS.name, self.storage
