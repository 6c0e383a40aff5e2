"""What an upload answers: the legacy JSON payload and the context of the result page."""

import base64
import json
import math

from astropy import units as u
from astropy.coordinates import SkyCoord
from django.urls import reverse
from plotly.utils import PlotlyJSONEncoder

from gsafollowup.timing import stage

from .matching import LARGE_OFFSET_ARCSEC
from .photometry import FEW_CALIBRATORS, LIMIT_SNR
from .plots import calibration_figure, calibration_png
from .services import UploadOutcome, may_undo, undo_deadline


def plot_url(request, point_id: int) -> str:
    return request.build_absolute_uri(reverse("followup-plot", args=[point_id]))


def lightcurve_url(request, alert_id: int) -> str:
    return request.build_absolute_uri(reverse("lightcurve") + f"?alert_id={alert_id}")


PNG_DATA_URI = "data:image/png;base64,"


def image_link(request, outcome: UploadOutcome, no_plot: bool) -> str | None:
    """URL of the stored point's plot; the bare base64 PNG on a dry run; None with noPlot.

    BHTOM and other clients write ``data:image/png;base64,`` in front of a dry run's link
    themselves, so it must not be there already (``image_data_uri`` has the whole URI).
    """
    if no_plot:
        return None
    if outcome.point is not None:
        return plot_url(request, outcome.point.pk)
    with stage("plot"):
        return base64.b64encode(calibration_png(outcome.result.to_dict())).decode("ascii")


def upload_payload(request, outcome: UploadOutcome, no_plot: bool) -> dict:
    """The legacy keys with their exact names and types, then the extra facts."""
    r = outcome.result
    link = image_link(request, outcome, no_plot)
    payload = {
        "followup_id": outcome.point.pk if outcome.point is not None else None,
        "mag": float(r.mag),
        "mag_err": -1.0 if r.is_limit else float(r.mag_err),
        "ra": float(r.ra),
        "dec": float(r.dec),
        "zeropoint": float(r.zeropoint),
        "outlier_fraction": float(r.outlier_fraction),
        "scatter": float(r.scatter),
        "npoints": int(r.npoints),
        "filter": r.filter,
        "survey": r.survey,
        "image_link": link,
        # Extra keys (the contract allows additions, never removals).
        "image_data_uri": PNG_DATA_URI + link if link and outcome.dry_run else None,
        "dry_run": outcome.dry_run,
        "is_limit": bool(r.is_limit),
        "mjd": outcome.mjd,
        "calib_err": float(r.calib_err),
        "mag_err_stat": float(r.mag_err_stat),
        "colour_term": float(r.colour_term),
        "colour_term_err": float(r.colour_term_err),
        "colour": r.colour,
        "sigma_int": float(r.sigma_int),
        "error_scale": float(r.error_scale),
        "radius_arcsec": float(r.radius_arcsec),
        "runner_up": r.runner_up,
        "flags": list(r.flags),
        "algorithm_version": r.algorithm_version,
        "alert_id": outcome.alert.pk,
        "alert_name": outcome.alert.ivorn,
        "lightcurve_url": lightcurve_url(request, outcome.alert.pk),
        # Surveys left out because their archive or catalog did not answer: {survey: reason}.
        "missing_surveys": dict(r.missing_surveys),
    }
    return payload


def _plain_json(figure) -> dict:
    return json.loads(json.dumps(figure.to_plotly_json(), cls=PlotlyJSONEncoder))


def figure_json(details: dict) -> dict:
    """The plotly figure for the page (embedded with json_script, never concatenated).

    ``narrow_layout`` stacks the three panels for phones: the page picks it by screen width.
    """
    figure = _plain_json(calibration_figure(details))
    figure["narrow_layout"] = _plain_json(calibration_figure(details, stacked=True))["layout"]
    return figure


def result_context(request, outcome: UploadOutcome, no_plot: bool) -> dict:
    details = outcome.result.to_dict()
    return {
        "outcome": outcome,
        "result": outcome.result,
        "payload": upload_payload(request, outcome, no_plot=True),
        "figure": None if no_plot else figure_json(details),
        "lightcurve_url": lightcurve_url(request, outcome.alert.pk),
        "facts": calibration_facts(details, outcome.alert),
    }


# ---------------------------------------------------------------- numbers as people write them


def error_decimals(error: float | None) -> int:
    """Decimals for an error and its value: at least three, and at least one significant digit."""
    if error is None or not math.isfinite(error) or error <= 0:
        return 3
    return min(max(3, -math.floor(math.log10(error))), 6)


def number(value: float | None, decimals: int = 3, signed: bool = False) -> str:
    """A float with this many decimals and a true minus sign; '' when missing."""
    if value is None or not math.isfinite(value):
        return ""
    text = f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"
    return text.replace("-", "−")


def error_text(error: float | None) -> str:
    """An error as people write it: 0.016, 0.0002 (never 0.000); '' for a missing one or a limit's -1."""
    if error is None or not math.isfinite(error) or error < 0:
        return ""
    if error == 0:
        return "0"  # e.g. a sigma_int the fit held at zero: exactly nothing, not a rounded 0.000
    return number(error, error_decimals(error))


def value_and_error(value: float | None, error: float | None, signed: bool = False) -> str:
    """``15.293 ± 0.016``: the value to the decimals of its error; the value alone without one."""
    decimals = error_decimals(error)
    shown = number(value, decimals, signed)
    err = error_text(error)
    return f"{shown} ± {err}" if shown and err else shown


def _readable(reason: str) -> str:
    """A guard's reason in the page's typography (the core writes ASCII)."""
    return reason.replace("+-", "±").replace(">=", "≥").replace(" -", " −")


#: What each quality flag of a calibration means, for the observer.
FLAG_TEXTS = {
    "forced_band": "You forced the survey or band; the server did not choose it.",
    "forced_band_failed_guards": (
        "The forced band failed the quality checks every automatic choice must pass (see the bands "
        "table); the answer is given because you insisted on it."
    ),
    "target_photometry_failed": (
        "A source lies at the alert position but its magnitude or error is unusable (e.g. 99 or 0), "
        "so an upper limit is given instead."
    ),
    "target_flagged": (
        "SExtractor flagged the target (saturated, truncated or badly extracted): check the image."
    ),
    "target_blended": (
        "The target is blended: SExtractor says so, or another source lies within twice the matching radius."
    ),
    "target_is_reference_star": (
        "The source at the alert position is itself a reference star; its catalogue magnitude was one "
        "of the calibrators."
    ),
    "target_below_limit_snr": (
        f"The target's signal-to-noise is below {LIMIT_SNR:g}: a marginal detection, close to the limit."
    ),
    "limit_extrapolated": (
        "The upper limit lies fainter than every source of the frame: it is extrapolated from the "
        "frame's error curve."
    ),
    "colour_term_fixed": (
        "The colour term was not fitted (too few stars with colours, or too little spread in colour); "
        "it is held at zero."
    ),
    "few_calibrators": f"Fewer than {FEW_CALIBRATORS} calibration stars: the zero point rests on few stars.",
    "large_offset": (
        f"The catalogue's positions are offset from the reference stars by more than "
        f"{LARGE_OFFSET_ARCSEC:g}″: check the image's astrometric solution (WCS)."
    ),
}


def flag_texts(flags) -> list[dict]:
    """Each flag with its explanation (an unknown one is shown by its name)."""
    return [{"code": flag, "text": FLAG_TEXTS.get(flag, "")} for flag in flags or []]


def alert_offset(ra, dec, alert) -> dict | None:
    """Where the measured source lies from the alert position: total, east and north (arcsec)."""
    if ra is None or dec is None:
        return None
    here = SkyCoord(ra * u.deg, dec * u.deg)
    there = SkyCoord(alert.ra * u.deg, alert.dec * u.deg)
    east, north = there.spherical_offsets_to(here)
    return {
        "arcsec": here.separation(there).arcsec,
        "east": east.to_value(u.arcsec),
        "north": north.to_value(u.arcsec),
    }


def candidate_rows(details: dict) -> list[dict]:
    """The table of candidate (survey, band) pairs, the chosen one first, each with its outcome."""
    chosen = (details.get("survey"), details.get("filter"))
    runner = details.get("runner_up") or {}
    rows = []
    for c in details.get("candidates") or []:
        key = (c.get("survey"), c.get("filter"))
        if key == chosen:
            outcome, kind = "chosen", "chosen"
        elif c.get("rejected"):
            outcome, kind = "rejected: " + _readable(c["rejected"]), "rejected"
        elif key == (runner.get("survey"), runner.get("filter")):
            outcome, kind = "runner-up (larger predicted error)", "runner-up"
        else:
            outcome, kind = "not chosen (larger predicted error)", "other"
        ct = c.get("colour_term")
        rows.append(
            {
                "band": f"{c.get('survey')}/{c.get('filter')}",
                "n": c.get("n"),
                "predicted_err": error_text(c.get("predicted_err")),
                "zeropoint": number(c.get("zeropoint"), 3),
                "colour_term": number(ct, 3, signed=True) if ct is not None else "",
                "sigma_int": error_text(c.get("sigma_int")),
                "outcome": outcome,
                "kind": kind,
            }
        )
    rows.sort(key=lambda row: row["kind"] != "chosen")
    return rows


def calibration_facts(values: dict, alert) -> dict:
    """Everything the result and point pages show, formatted here so that the template only loops.

    ``values`` has the keys of ``CalibrationResult.to_dict()`` with ``mag_err`` the total error;
    a point imported from the old server has only some of them, and missing rows are left out.
    """
    v = values
    is_limit = bool(v.get("is_limit"))
    band = f"{v.get('survey')}/{v.get('filter')}"
    rows = []

    def row(label, value, hint="", css=""):
        if value not in (None, ""):
            rows.append({"label": label, "value": value, "hint": hint, "css": css})

    if is_limit:
        snr = v.get("limit_snr") or LIMIT_SNR
        row(f"Upper limit ({snr:g}σ)", f"> {number(v.get('mag'), 3)} ({band})", css="mag")
        row("Calibration error", error_text(v.get("calib_err")) + " mag", "of the zero point at this limit")
        row("Position", "at the alert position (no source)")
    else:
        row("Magnitude", f"{value_and_error(v.get('mag'), v.get('mag_err'))} ({band})", css="mag")
        stat, calib = error_text(v.get("mag_err_stat")), error_text(v.get("calib_err"))
        if stat and calib:
            row("Statistical / calibration error", f"{stat} / {calib} mag", "added in quadrature above")
        if v.get("ra") is not None:
            row("Position measured", f"{number(v['ra'], 6)}, {number(v['dec'], 6)}", "RA, Dec (degrees)")
        offset = alert_offset(v.get("ra"), v.get("dec"), alert)
        if offset:
            row(
                "Offset from the alert",
                f"{offset['arcsec']:.2f}″ ({number(offset['east'], 2, True)}″ E, "
                f"{number(offset['north'], 2, True)}″ N)",
                "of the measured source from the alert position",
            )
    inst = v.get("inst_mag")
    if inst is not None:
        text = value_and_error(inst, v.get("inst_mag_err")) if not is_limit else number(inst, 3)
        row("Instrumental magnitude", text, "of the frame at the limit" if is_limit else "from the catalogue")
    row("Zero point", value_and_error(v.get("zeropoint"), v.get("zeropoint_err")))
    if v.get("colour_term") is not None:
        term = value_and_error(v["colour_term"], v.get("colour_term_err"), signed=True)
        row("Colour term", f"{term} × ({v['colour']})" if v.get("colour") else f"{term} (not fitted)")
    if v.get("sigma_int") is not None:
        row("Intrinsic scatter σ_int", error_text(v["sigma_int"]) or "0", "mag, added to every star's error")
    if v.get("error_scale") is not None:
        row("Error scale", f"× {v['error_scale']:.2f}", "applied to the catalogue's magnitude errors")
    if v.get("npoints") is not None:
        row("Calibrators / outlier fraction", f"{v['npoints']} / {number(v.get('outlier_fraction'), 2)}")
    row("Scatter", error_text(v.get("scatter")) and error_text(v.get("scatter")) + " mag")
    if v.get("radius_arcsec"):
        row("Matching radius", f"{v['radius_arcsec']:.2f}″")
    if v.get("offset_ra_arcsec") is not None:
        row(
            "Catalogue − reference offset",
            f"{number(v['offset_ra_arcsec'], 2, True)}″ E, {number(v['offset_dec_arcsec'], 2, True)}″ N",
            "systematic shift of the catalogue's astrometry, removed before matching",
        )
    runner = v.get("runner_up")
    if runner:
        row(
            "Runner-up band",
            f"{runner['survey']}/{runner['filter']}: {value_and_error(runner['mag'], runner.get('mag_err'))}",
        )
    return {"rows": rows, "flags": flag_texts(v.get("flags")), "candidates": candidate_rows(v)}


def result_values(result) -> dict:
    """A fresh result's values for ``calibration_facts`` (``mag_err`` is the total)."""
    return result.to_dict()


def point_values(point) -> dict:
    """A stored point's values for ``calibration_facts``: its columns over its kept details."""
    values = dict(point.details or {})
    values.pop("stars", None)
    values.update(
        survey=point.survey,
        filter=point.filter,
        mag=point.mag,
        mag_err=point.total_err,
        mag_err_stat=point.mag_err,
        calib_err=point.calib_err,
        is_limit=point.is_limit,
        ra=None if point.is_limit else point.ra,
        dec=None if point.is_limit else point.dec,
        zeropoint=point.zeropoint,
        colour_term=point.colour_term,
        scatter=point.scatter,
        npoints=point.npoints,
        outlier_fraction=point.outlier_fraction,
        radius_arcsec=point.radius_arcsec,
    )
    return values


def deleted_context(request, point, error=None) -> dict:
    """The deleted page: the point, the undo form while it is offered, and a refused undo's reason."""
    existing = getattr(error, "existing_id", None)
    return {
        "point": point,
        "may_undo": error is None and may_undo(request.user, point),
        "undo_deadline": undo_deadline(point),
        "error": error.message if error is not None else "",
        "existing_url": reverse("followup-point", args=[existing]) if existing else "",
        "lightcurve_url": lightcurve_url(request, point.alert_id),
    }
