"""The CI dependency audit (.ci/audit.py): its verdicts on pip-audit's JSON reports."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "audit.py"
spec = importlib.util.spec_from_file_location("ci_audit", SCRIPT)
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)

CLEAN = {"dependencies": [{"name": "django", "version": "5.2.19", "vulns": []}], "fixes": []}
VULNERABLE = {
    "dependencies": [
        {
            "name": "django",
            "version": "4.2.0",
            "vulns": [
                {
                    "id": "PYSEC-2023-100",
                    "fix_versions": ["4.2.2"],
                    "aliases": ["CVE-2023-36053"],
                    "description": "",
                }
            ],
        },
        {"name": "numpy", "version": "2.4.6", "vulns": []},
    ],
    "fixes": [],
}
# What pip-audit wrote on the development machine, whose registry mirror has no vulnerability data.
UNREACHABLE = {
    "dependencies": [
        {
            "name": "django",
            "skip_reason": "Dependency not found on PyPI and could not be audited: django (5.2.19)",
        },
        {
            "name": "numpy",
            "skip_reason": "Dependency not found on PyPI and could not be audited: numpy (2.4.6)",
        },
    ],
    "fixes": [],
}


def test_a_vulnerable_pin_fails_and_names_the_fix():
    code, lines = audit.verdict(VULNERABLE, 1, "", required=False)
    assert code == 1
    assert "django==4.2.0: PYSEC-2023-100 (fixed in 4.2.2)" in "\n".join(lines)


def test_a_clean_audit_passes():
    code, lines = audit.verdict(CLEAN, 0, "", required=True)
    assert code == 0 and "1 pinned packages audited, no known vulnerability" in lines[0]


@pytest.mark.parametrize("report", [UNREACHABLE, None], ids=["all-skipped", "no-report"])
def test_an_unusable_service_is_said_plainly_and_fails_only_when_required(report):
    log = "requests.exceptions.ConnectionError: Failed to resolve 'pypi.org'"
    code, lines = audit.verdict(report, 1 if report is None else 0, log, required=False)
    assert (
        code == 0
        and lines[0] == "DEPENDENCY AUDIT NOT PERFORMED: the vulnerability service could not be used."
    )
    assert ("skipped" in lines[1]) if report else ("Failed to resolve" in lines[1])
    code, lines = audit.verdict(report, 1, log, required=True)
    assert code == 2 and lines[-1] == "GSA_AUDIT_REQUIRED=1: failing."


def test_every_pin_of_the_requirements_is_exact():
    """pip-audit audits the pinned versions; a range would audit whatever the resolver picks."""
    for name in audit.REQUIREMENTS:
        for line in (SCRIPT.parent.parent / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                assert "==" in line, f"{name}: {line}"
