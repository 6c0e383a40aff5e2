"""Input parsing for uploads, shared by the legacy endpoint (DRF serializer) and the web form."""

import math
import time

from django import forms
from rest_framework import serializers

from gsafollowup.errors import BadInput
from observers.auth import current_observatory

from .services import followup_calibrate

#: MJD of 1900-01-01; no CCD photometry is older.
MIN_MJD = 15020.0
MAX_MATCH_ARCSEC = 30.0
MAX_EXPTIME = 1e6


def current_mjd() -> float:
    return time.time() / 86400.0 + 40587.0


def parse_mjd(value) -> float:
    """MJD of the observation: a finite float between 1900 and tomorrow."""
    mjd = parse_float(value, "MJD")
    if mjd is None:
        raise BadInput("MJD is missing: give the observation's Modified Julian Date.")
    if not MIN_MJD <= mjd <= current_mjd() + 1.0:
        raise BadInput(f"MJD {mjd:g} is not a plausible observation date (1900 to now).")
    return mjd


def parse_float(value, name: str) -> float | None:
    """A finite float, None for an empty value, BadInput otherwise."""
    if value is None or str(value).strip() == "":
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        shown = "".join(c if c.isprintable() else "?" for c in str(value)[:20])
        raise BadInput(f"{name} must be a number, not '{shown}'.") from None
    if not math.isfinite(number):
        raise BadInput(f"{name} must be a finite number.")
    return number


def parse_exptime(value) -> float | None:
    """Exposure in seconds; None when absent or 0, which VaST sends when the header has none."""
    exptime = parse_float(value, "expTime")
    if exptime is not None and not 0 <= exptime <= MAX_EXPTIME:
        raise BadInput("expTime must be a positive number of seconds (0: unknown).")
    return exptime or None


def parse_match_dist(value) -> float | None:
    """Matching radius in arcsec; None (automatic) for empty, 'auto' or a negative value."""
    if value is not None and str(value).strip().lower() == "auto":
        return None
    radius = parse_float(value, "matchDist")
    if radius is None or radius < 0:
        return None
    if radius == 0 or radius > MAX_MATCH_ARCSEC:
        raise BadInput(f"matchDist must be between 0 and {MAX_MATCH_ARCSEC:g} arcsec (or negative for auto).")
    return radius


def parse_flag(value, name: str) -> bool:
    text = str(value if value is not None else "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise BadInput(f"{name} must be 0 or 1.")


def parse_output_format(value) -> str:
    text = str(value or "html").strip().lower()
    if text not in ("json", "html"):
        raise BadInput("outputFormat must be json or html.")
    return text


#: The parsed fields that ``followup_calibrate`` takes as they are (see ``upload_arguments``).
SERVICE_FIELDS = ("ivorn", "mjd", "exptime", "match_dist", "force_filter", "dry_run", "comment")


def calibrate_upload(user, data: dict, content: bytes | None = None, filename: str = ""):
    """Run the upload service on a request's parsed fields (serializer or form) and its file.

    ``content`` replaces the uploaded file: a catalog kept from an earlier request (pending).
    """
    if content is None:
        upload = data["sexCat"]
        content, filename = upload.read(), upload.name or ""
    return followup_calibrate(
        observatory=current_observatory(user),
        content=content,
        filename=filename,
        **{name: data[name] for name in SERVICE_FIELDS},
    )


#: Above this a number is a Julian Date (JD 2400000.5 is MJD 0); below, an MJD.
JD_OF_MJD_ZERO = 2400000.5


def parse_observation_time(value) -> tuple[float, str]:
    """MJD from an MJD, a JD or an ISO date/time (UTC), and a sentence saying which was understood."""
    from astropy.time import Time

    text = str(value or "").strip()
    if not text:
        raise BadInput("The time of the observation is missing: give an MJD, a JD or an ISO date (UTC).")
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        kind, mjd = ("JD", number - JD_OF_MJD_ZERO) if number >= JD_OF_MJD_ZERO else ("MJD", number)
        mjd = parse_mjd(mjd)
        iso = Time(mjd, format="mjd", scale="utc").isot[:19]
    else:
        try:
            time_ = Time(text, scale="utc")
            mjd = float(time_.mjd)
        except (ValueError, TypeError):
            shown = "".join(c if c.isprintable() else "?" for c in text[:30])
            raise BadInput(
                f"'{shown}' is not a time: give an MJD (59373.1), a JD (2459373.6) or an ISO date "
                "(2021-06-08T02:24:00, UTC)."
            ) from None
        kind, mjd, iso = "ISO date", parse_mjd(mjd), time_.isot[:19]
    return mjd, f"understood as {kind}: MJD {mjd:.5f} = {iso} UTC"


def upload_arguments(data: dict) -> dict:
    """Turn raw upload fields (legacy names) into the service's keyword arguments."""
    return {
        "ivorn": str(data.get("EventID") or ""),
        "mjd": parse_mjd(data.get("MJD")),
        "exptime": parse_exptime(data.get("expTime")),
        "match_dist": parse_match_dist(data.get("matchDist")),
        "force_filter": str(data.get("forceFilter") or "no").strip() or "no",
        "dry_run": parse_flag(data.get("dryRun"), "dryRun"),
        "comment": str(data.get("comment") or "").strip(),
    }


class UploadSerializer(serializers.Serializer):
    """The legacy multipart fields; unknown extra fields are ignored."""

    sexCat = serializers.FileField(allow_empty_file=True)
    EventID = serializers.CharField(max_length=1000, trim_whitespace=True, required=False, default="")
    MJD = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    expTime = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    matchDist = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    dryRun = serializers.CharField(max_length=10, required=False, allow_blank=True, default="")
    forceFilter = serializers.CharField(max_length=50, required=False, allow_blank=True, default="no")
    outputFormat = serializers.CharField(max_length=10, required=False, allow_blank=True, default="html")
    noPlot = serializers.CharField(max_length=10, required=False, allow_blank=True, default="")
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def to_internal_value(self, data):
        if not data.get("sexCat") and not getattr(data, "getlist", lambda _k: [])("sexCat"):
            raise BadInput("sexCat is missing: attach the catalog file (-F sexCat=@file.cat).")
        values = super().to_internal_value(data)
        values.update(upload_arguments(values))
        values["no_plot"] = parse_flag(values.get("noPlot"), "noPlot")
        values["output_format"] = parse_output_format(values.get("outputFormat"))
        return values


class UploadForm(forms.Form):
    """The web upload form: the fields of the legacy endpoint, each checked on its own.

    The time accepts MJD, JD or an ISO date (the legacy endpoint's MJD stays an MJD). A catalog
    kept from an earlier post (``kept``, see ``calibration.pending``) stands in for the file.
    """

    EventID = forms.CharField(label="Alert (IVORN)", max_length=255)
    # An empty file reaches the catalog reader, which says so in the same words as on /cgi/upload.
    sexCat = forms.FileField(
        label="Source catalog",
        help_text="SExtractor ASCII_HEAD, FITS table or FITS_LDAC",
        allow_empty_file=True,
        required=False,
    )
    MJD = forms.CharField(
        label="Time of the observation",
        help_text="MJD (59373.1), JD (2459373.6) or ISO date and time in UTC (2021-06-08T02:24:00)",
    )
    expTime = forms.CharField(label="Exposure time (s)", required=False)
    matchDist = forms.CharField(
        label="Matching radius (arcsec)",
        required=False,
        initial="auto",
        help_text="auto, or a radius in arcsec",
    )
    forceFilter = forms.CharField(
        label="Band",
        required=False,
        initial="no",
        help_text="no (automatic), SURVEY/BAND, SURVEY/any or any/BAND",
    )
    dryRun = forms.BooleanField(label="Dry run (store nothing)", required=False)
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, kept: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        #: The catalog kept from the previous post of this form: {"sha256", "name", "size"}.
        self.kept = kept
        self.time_understood = ""

    @staticmethod
    def _field(parse, value):
        try:
            return parse(value)
        except BadInput as error:
            raise forms.ValidationError(error.message) from None

    def clean_MJD(self):
        mjd, self.time_understood = self._field(parse_observation_time, self.cleaned_data.get("MJD"))
        return mjd

    def clean_expTime(self):
        return self._field(parse_exptime, self.cleaned_data.get("expTime"))

    def clean_matchDist(self):
        return self._field(parse_match_dist, self.cleaned_data.get("matchDist"))

    def clean(self):
        data = super().clean()
        if not data.get("sexCat") and not self.kept:
            self.add_error("sexCat", "Choose the catalog file of your image.")
        data.update(
            ivorn=str(data.get("EventID") or ""),
            mjd=data.get("MJD"),
            exptime=data.get("expTime"),
            match_dist=data.get("matchDist"),
            force_filter=str(data.get("forceFilter") or "no").strip() or "no",
            dry_run=bool(data.get("dryRun")),
            comment=str(data.get("comment") or "").strip(),
        )
        return data


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented recipe)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class BatchForm(forms.Form):
    """The web form of a batch: many catalogs or archives, and fields for every frame."""

    files = MultipleFileField(
        label="Catalogs or archives",
        help_text="Several catalogs, or a zip or tar of them; a manifest.csv in it gives fields per file",
        allow_empty_file=True,
    )
    event_id = forms.CharField(label="Alert (IVORN), for every frame", max_length=1000, required=False)
    mjd = forms.CharField(label="MJD, for every frame", required=False, max_length=50)
    exp_time = forms.CharField(label="Exposure time (s)", required=False, max_length=50)
    match_dist = forms.CharField(label="Matching radius (arcsec)", required=False, max_length=50)
    force_filter = forms.CharField(label="Band", required=False, max_length=50)
    dry_run = forms.BooleanField(label="Dry run (store nothing)", required=False)
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        from .batches import frame_arguments

        fields = {k: v for k, v in data.items() if k not in ("files", "dry_run") and str(v or "").strip()}
        try:
            frame_arguments(fields, {"mjd": fields.get("mjd") or "59000"}, False)
        except BadInput as error:
            raise forms.ValidationError(error.message) from None
        data["fields"] = fields
        return data
