"""What an upload answers: the legacy JSON payload and the context of the result page."""

import base64
import json

from django.urls import reverse
from plotly.utils import PlotlyJSONEncoder

from gsafollowup.timing import stage

from .plots import calibration_figure, calibration_png
from .services import UploadOutcome


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


def figure_json(details: dict) -> str:
    """The plotly figure as JSON for the page (embedded with json_script, never concatenated)."""
    return json.loads(json.dumps(calibration_figure(details).to_plotly_json(), cls=PlotlyJSONEncoder))


def result_context(request, outcome: UploadOutcome, no_plot: bool) -> dict:
    details = outcome.result.to_dict()
    return {
        "outcome": outcome,
        "result": outcome.result,
        "payload": upload_payload(request, outcome, no_plot=True),
        "figure": None if no_plot else figure_json(details),
        "lightcurve_url": lightcurve_url(request, outcome.alert.pk),
    }
