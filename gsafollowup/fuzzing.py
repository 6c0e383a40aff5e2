"""Properties of the input layer, run by the tests (briefly) and by ``manage.py fuzz`` (for longer).

Each property takes one generated input and passes if the code under test either succeeds with
a sane result or raises the domain error (the BadInput family) with a one-line message;
anything else (another exception, a bad result) fails it. Needs hypothesis (requirements-dev.txt).
"""

import gzip
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings as django_settings
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.reporting import with_reporter

from gsafollowup.errors import BadInput

DATA = Path(django_settings.BASE_DIR) / "tests" / "data"
HEADER = "#   1 ALPHA_J2000\n#   2 DELTA_J2000\n#   3 MAG_AUTO\n#   4 MAGERR_AUTO\n"
ROWS = "".join(f"{24.1 + i * 1e-3:.6f} {-48.7 + i * 1e-3:.6f} {15 + i * 0.1:.3f} 0.010\n" for i in range(8))
MAX_MESSAGE = 100


def _good_fits() -> bytes:
    from astropy.io import fits

    columns = [
        fits.Column(name=name, format="D", array=values)
        for name, values in (
            ("ALPHA_J2000", 24.1 + np.arange(8) * 1e-3),
            ("DELTA_J2000", -48.7 + np.arange(8) * 1e-3),
            ("MAG_AUTO", 15 + np.arange(8) * 0.1),
            ("MAGERR_AUTO", np.full(8, 0.01)),
        )
    ]
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(buffer)
    return buffer.getvalue()


def _decam_head(n_rows: int = 40) -> bytes:
    """The real DECam catalog's header and first rows (a real layout with 12 columns)."""
    path = DATA / "decam-grb210605a-g-night1.cat"
    if not path.exists():
        return (HEADER + ROWS).encode()
    lines = path.read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    rows = [line for line in lines if not line.startswith("#")][:n_rows]
    return ("\n".join(header + rows) + "\n").encode()


def _real_ldac() -> bytes:
    path = DATA / "t90-osn-hd204827-R.ldac.fits"
    return path.read_bytes() if path.exists() else _good_fits()


def assert_one_line(error: BadInput) -> None:
    message = str(error)
    assert message and "\n" not in message and len(message) < MAX_MESSAGE, message


# ---------------------------------------------------------------- strategies


def mutated(base: bytes):
    """Byte strings derived from a valid file: cut, overwritten, inserted into, or gzipped."""
    edit = st.tuples(
        st.integers(0, len(base)),
        st.integers(0, len(base)),
        st.binary(max_size=64),
        st.sampled_from(["cut", "overwrite", "insert", "truncate"]),
    )
    return st.lists(edit, min_size=1, max_size=4).map(lambda edits: _apply(base, edits)) | st.just(base).map(
        lambda data: gzip.compress(data, mtime=0)[: len(data) // 3]
    )


def _apply(data: bytes, edits) -> bytes:
    for start, end, payload, kind in edits:
        start, end = sorted((min(start, len(data)), min(end, len(data))))
        if kind == "cut":
            data = data[:start] + data[end:]
        elif kind == "overwrite":
            data = data[:start] + payload + data[start + len(payload) :]
        elif kind == "insert":
            data = data[:start] + payload + data[start:]
        else:
            data = data[:start]
    return data


TRICKY_TEXT = [
    "",
    " ",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "-0",
    "0x1F",
    "1_000",
    "١٢٣",
    "12:30:00",
    "99",
    "-99",
    "\x00",
    "é",
    "\u202e",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "APASS/g",
    "any/V",
    "GaiaDR3/any",
    "auto",
    "json",
    "html",
    "1",
    "0",
    "true",
    "ivo://Gaia16aye",
    "59373.1",
]


def field_text():
    """Values a client might send in a form field: numbers, tricky strings, any text."""
    return st.one_of(
        st.sampled_from(TRICKY_TEXT),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers().map(str),
        st.text(max_size=80),
        st.text(max_size=3000, alphabet=st.characters(codec="utf-8")),
    )


def catalog_lines():
    """Text catalogs assembled from plausible and implausible header lines and rows."""
    header = st.sampled_from(
        HEADER.splitlines()
        + [
            "#   5 FLAGS",
            "#   5 X_IMAGE",
            "#   6 Y_IMAGE",
            "#   2 X_WORLD [deg]",
            "#   1 ALPHA_J2000 [h]",
            "# c",
        ]
    )
    row = st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(TRICKY_TEXT)),
        max_size=7,
    ).map(" ".join)
    return st.lists(st.one_of(header, row), max_size=14).map(lambda lines: "\n".join(lines).encode("utf-8"))


UPLOAD_FIELDS = ("EventID", "MJD", "expTime", "matchDist", "forceFilter", "dryRun", "noPlot", "outputFormat")


def upload_field_values():
    return st.fixed_dictionaries({}, optional={name: field_text() for name in (*UPLOAD_FIELDS, "comment")})


def event_field_values():
    return st.fixed_dictionaries(
        {}, optional={name: field_text() for name in ("EventID", "ra", "dec", "url", "comment")}
    )


# ---------------------------------------------------------------- properties


def catalog_reader(data: bytes) -> None:
    """read_catalog: a sane catalog or one BadCatalog with a one-line message."""
    from calibration.catalogs import read_catalog
    from gsafollowup.errors import BadCatalog

    try:
        catalog = read_catalog(data, "upload.cat")
    except BadCatalog as error:
        assert_one_line(error)
        return
    assert len(catalog) > 0
    assert np.all((catalog.ra >= 0) & (catalog.ra < 360)) and np.all(np.abs(catalog.dec) <= 90)
    assert catalog.photometry_ok().any()
    ra, dec, radius = catalog.footprint()
    assert math.isfinite(ra) and math.isfinite(dec) and 0 <= radius <= 180


def _query_dict(values: dict):
    from django.http import QueryDict

    query = QueryDict(mutable=True)
    for key, value in values.items():
        query[key] = value
    return query


def _check_upload_values(data: dict) -> None:
    from calibration.forms import MAX_EXPTIME, MAX_MATCH_ARCSEC, MIN_MJD

    assert math.isfinite(data["mjd"]) and data["mjd"] >= MIN_MJD
    assert data["exptime"] is None or 0 < data["exptime"] <= MAX_EXPTIME
    assert data["match_dist"] is None or 0 < data["match_dist"] <= MAX_MATCH_ARCSEC
    assert isinstance(data["dry_run"], bool)
    assert isinstance(data["ivorn"], str) and "\x00" not in data["ivorn"]


def upload_serializer(values: dict) -> None:
    """The legacy upload's serializer: valid values, a DRF ValidationError or BadInput."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.exceptions import ValidationError

    from calibration.forms import UploadSerializer
    from calibration.photometry import parse_force_filter

    query = _query_dict(values)
    files = {"sexCat": SimpleUploadedFile("c.cat", b"x")}
    query.update(files)
    serializer = UploadSerializer(data=query)
    try:
        valid = serializer.is_valid()
    except BadInput as error:
        assert_one_line(error)
        return
    if not valid:
        assert serializer.errors
        try:
            serializer.is_valid(raise_exception=True)
        except ValidationError:
            return
        raise AssertionError("is_valid said no but raised nothing")
    data = serializer.validated_data
    _check_upload_values(data)
    assert data["output_format"] in ("json", "html") and isinstance(data["no_plot"], bool)
    try:
        parse_force_filter(data["force_filter"])
    except BadInput as error:
        assert_one_line(error)


def upload_form(values: dict) -> None:
    """The web upload form: valid values or form errors, never an exception."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from calibration.forms import UploadForm

    values = {k: v for k, v in values.items() if k not in ("noPlot", "outputFormat")}
    form = UploadForm(_query_dict(values), {"sexCat": SimpleUploadedFile("c.cat", b"x")})
    if form.is_valid():
        _check_upload_values(form.cleaned_data)
    else:
        assert form.errors


def newevent_input(values: dict) -> None:
    """The new-event serializer, form and cleaners: valid alert fields or the domain error."""
    from alerts.forms import NewEventForm
    from alerts.legacy import NewEventSerializer
    from alerts.services import clean_coordinates, clean_ivorn, clean_url

    serializer = NewEventSerializer(data=_query_dict(values))
    if serializer.is_valid():
        data = serializer.validated_data
        try:
            ivorn = clean_ivorn(data["EventID"])
            ra, dec = clean_coordinates(data["ra"], data["dec"])
            url = clean_url(data["url"])
        except BadInput as error:
            assert_one_line(error)
        else:
            assert ivorn and len(ivorn) <= 255 and all(ord(c) >= 32 for c in ivorn)
            assert 0 <= ra < 360 and -90 <= dec <= 90
            assert url == "" or url.startswith(("http://", "https://"))
    form = NewEventForm(_query_dict(values))
    if not form.is_valid():
        assert form.errors


def list_parameters(values: dict) -> None:
    """The alert list's num/observed_only/published parsers: a value or BadInput."""
    from alerts.views import _flag, _limit

    query = _query_dict(values)
    try:
        num = _limit(query)
        assert num is None or 0 < num < 2**31
        for name in ("observed_only", "published"):
            assert isinstance(_flag(query, name), bool)
    except BadInput as error:
        assert_one_line(error)


@dataclass
class Property:
    name: str
    check: object
    strategy: object


def properties() -> list[Property]:
    """Every property with its input strategy (built on demand: the FITS bases need astropy)."""
    good_ascii = (HEADER + ROWS).encode()
    return [
        Property("catalog: any bytes", catalog_reader, st.binary(max_size=4000)),
        Property("catalog: mutated ASCII_HEAD", catalog_reader, mutated(good_ascii)),
        Property("catalog: mutated real DECam", catalog_reader, mutated(_decam_head())),
        Property("catalog: mutated FITS table", catalog_reader, mutated(_good_fits())),
        Property("catalog: mutated real FITS_LDAC", catalog_reader, mutated(_real_ldac())),
        Property("catalog: line soup", catalog_reader, catalog_lines()),
        Property("upload serializer", upload_serializer, upload_field_values()),
        Property("upload form", upload_form, upload_field_values()),
        Property("new event serializer and form", newevent_input, event_field_values()),
        Property(
            "alert list parameters",
            list_parameters,
            st.fixed_dictionaries(
                {}, optional={k: field_text() for k in ("num", "observed_only", "published")}
            ),
        ),
    ]


# ---------------------------------------------------------------- the long run


@dataclass
class Outcome:
    """What one property's run found: inputs tried and, on failure, the minimal input and error."""

    name: str
    tried: int = 0
    failure: str | None = None
    minimal: object = None
    report: list[str] = field(default_factory=list)


def run_property(prop: Property, examples: int, seed_value: int, outcome: Outcome) -> None:
    """Run one property for up to ``examples`` generated inputs; record a minimal failure if any."""

    def counted(value):
        outcome.tried += 1
        try:
            prop.check(value)
        except BaseException:
            # Hypothesis replays the shrunk input last, so the last failing value is the minimal one.
            outcome.minimal = value
            raise

    test = settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
    )(given(prop.strategy)(counted))
    test = seed(seed_value)(test)
    with with_reporter(outcome.report.append):
        try:
            test()
        except (Exception, Flaky) as error:  # noqa: BLE001 - finding any exception is the point
            outcome.failure = f"{type(error).__name__}: {error}".strip()
            # Hypothesis attaches the shrunk input ("Falsifying example: ...") as exception notes.
            outcome.report.extend(getattr(error, "__notes__", []))


def fuzz(seconds: float | None = None, examples: int | None = None, batch: int = 200, only: str = ""):
    """Run every property round-robin until the time or the example budget is spent; yields Outcomes."""
    chosen = [p for p in properties() if only.lower() in p.name.lower()]
    outcomes = {p.name: Outcome(p.name) for p in chosen}
    deadline = time.monotonic() + seconds if seconds else None
    budget = examples
    round_no = 0
    while chosen:
        round_no += 1
        tried_before = sum(o.tried for o in outcomes.values())
        for prop in list(chosen):
            outcome = outcomes[prop.name]
            if outcome.failure:
                chosen.remove(prop)
                continue
            size = batch if budget is None else max(1, min(batch, budget // max(1, len(chosen))))
            before = outcome.tried
            run_property(prop, size, seed_value=round_no * 1009 + len(prop.name), outcome=outcome)
            if budget is not None:
                budget -= outcome.tried - before
            if (deadline and time.monotonic() > deadline) or (budget is not None and budget <= 0):
                return list(outcomes.values())
        if (deadline is None and budget is None) or sum(o.tried for o in outcomes.values()) == tried_before:
            break
    return list(outcomes.values())
