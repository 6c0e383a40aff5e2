"""Static files: plotly.js is served by the project itself, in development and in production."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.contrib.staticfiles import finders

ROOT = Path(__file__).resolve().parent.parent


def test_plotly_js_is_served_by_the_project(tmp_path):
    assert finders.find("vendor/plotly/plotly.min.js").endswith("plotly/package_data/plotly.min.js")
    # Production (DEBUG off, whitenoise): collectstatic copies it with the rest.
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "DATABASE_URL")},
        "DEBUG": "0",
        "SECRET_KEY": "collectstatic-test-key-" + "x" * 40,
        "STATIC_ROOT": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())
    assert "vendor/plotly/plotly.min.js" in manifest["paths"] and "js/lightcurve.js" in manifest["paths"]
