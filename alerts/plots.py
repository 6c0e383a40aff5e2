"""The interactive light-curve figure, built with plotly from a LightCurve's arrays."""

import html

import numpy as np
import plotly.graph_objects as go
from django.utils.html import json_script
from plotly.colors import qualitative
from plotly.utils import PlotlyJSONEncoder

from calibration.surveys import BANDS

from .lightcurves import MJD_UNIX_EPOCH, LightCurve, mjd_to_iso

#: Colours of the common bands, roughly by wavelength; other bands take the fallback palette.
BAND_COLOURS = {
    "u": "#6a3d9a",
    "U": "#6a3d9a",
    "B": "#1f4fd8",
    "B1pg": "#3b6fe0",
    "B2pg": "#5a8ae6",
    "g": "#1a9850",
    "V": "#8c9a00",
    "G": "#4d4d4d",
    "BP": "#2b83ba",
    "RP": "#d7191c",
    "r": "#e6550d",
    "R": "#d62728",
    "R1pg": "#e7664f",
    "R2pg": "#ef8a62",
    "i": "#a50f15",
    "I": "#7f2704",
    "z": "#5c3317",
    "y": "#3d2b1f",
    "J": "#9e9ac8",
    "H": "#756bb1",
    "K": "#54278f",
}
FALLBACK_COLOURS = qualitative.Dark24
#: One marker per reference survey, so two surveys in one band stay apart.
SURVEY_SYMBOLS = {
    "APASS": "circle",
    "SDSS": "square",
    "PS1": "diamond",
    "USNO": "cross",
    "GaiaDR3": "star",
    "GaiaSP": "hexagon",
    "RefCat2": "pentagon",
    "2MASS": "triangle-up",
}
FALLBACK_SYMBOLS = ("x", "star-square", "hourglass", "bowtie", "circle-x", "square-x")
LIMIT_SYMBOL = "arrow-down"
FIGURE_ID = "lightcurve-figure"
_WHERE = "MJD %{x:.5f} · %{text} UTC<br>%{hovertext}<br>follow-up id %{customdata[2]}<extra></extra>"
HOVER_DETECTION = (
    "<b>%{meta[0]}</b> (%{meta[1]}): %{y:.3f} ± %{customdata[0]:.3f} (stat.)"
    " ± %{customdata[1]:.3f} (calib.)<br>" + _WHERE
)
HOVER_LIMIT = "<b>%{meta[0]}</b> (%{meta[1]}): fainter than %{y:.3f} (upper limit)<br>" + _WHERE


def band_order(bands) -> list[str]:
    """Bands in the project's standard order, unknown ones after them alphabetically."""
    rank = {band: k for k, band in enumerate(BANDS)}
    return sorted(set(bands), key=lambda b: (rank.get(b, len(rank)), b))


def band_colour(band: str, order: list[str]) -> str:
    """The band's own colour, or one of the fallback palette by its place in ``order``."""
    return BAND_COLOURS.get(band) or FALLBACK_COLOURS[order.index(band) % len(FALLBACK_COLOURS)]


def survey_symbol(survey: str, surveys: list[str]) -> str:
    """The survey's own marker, or a fallback one by its place in ``surveys``."""
    return SURVEY_SYMBOLS.get(survey) or FALLBACK_SYMBOLS[surveys.index(survey) % len(FALLBACK_SYMBOLS)]


def date_range(mjd: np.ndarray) -> list[float]:
    """The x range shown at first: the points with a margin of 3 % (at least half a day)."""
    low, high = float(mjd.min()), float(mjd.max())
    pad = max(0.03 * (high - low), 0.5)
    return [low - pad, high + pad]


def _traces(lc: LightCurve) -> list[dict]:
    """Scatter traces per band, survey and kind (detections, limits); a band is one legend group."""
    mjd = np.asarray(lc.mjd, dtype=float)
    mag = np.asarray(lc.mag, dtype=float)
    magerr = np.asarray(lc.magerr, dtype=float)
    caliberr = np.nan_to_num(np.asarray(lc.caliberr, dtype=float))
    limit = np.asarray(lc.is_limit, dtype=bool)
    # Error bars combine the statistical and calibration errors.
    total = np.hypot(magerr, caliberr)
    band = np.asarray(lc.filter, dtype=object)
    survey = np.asarray(lc.catalog, dtype=object)
    # Float arrays travel as base64 binary in the figure JSON; string arrays as lists. Neither is
    # an object array, which plotly would validate and copy element by element.
    numbers = np.column_stack([magerr, caliberr, np.asarray(lc.id, dtype=float)])
    dates = np.asarray(lc.dates, dtype=str)
    escaped = {name: html.escape(name) for name in set(lc.observatory)}
    observers = np.asarray([escaped[name] for name in lc.observatory], dtype=str)

    bands, surveys = band_order(lc.filter), sorted(set(lc.catalog))
    traces = []
    for name in bands:
        colour = band_colour(name, bands)
        for ref in surveys:
            in_group = (band == name) & (survey == ref)
            first = True
            for limits in (False, True):
                chosen = np.flatnonzero(in_group & (limit == limits))
                if not len(chosen):
                    continue
                trace = {
                    "type": "scatter",
                    "mode": "markers",
                    "x": mjd[chosen],
                    "y": mag[chosen],
                    "name": html.escape(f"{name} ({ref})"),
                    "legendgroup": name,
                    # One legend entry per band and survey; its limits follow it.
                    "showlegend": first,
                    "meta": [html.escape(name), html.escape(ref)],
                    "marker": {"color": colour, "size": 7, "symbol": survey_symbol(ref, surveys)},
                    "customdata": numbers[chosen],
                    "text": dates[chosen],
                    "hovertext": observers[chosen],
                    "hovertemplate": HOVER_DETECTION,
                }
                if limits:
                    trace["marker"].update(size=11, symbol=LIMIT_SYMBOL)
                    trace["hovertemplate"] = HOVER_LIMIT
                else:
                    trace["error_y"] = {"type": "data", "array": total[chosen], "thickness": 1}
                traces.append(trace)
                first = False
    return traces


def _layout(x_range: list[float]) -> dict:
    """Magnitudes downwards-faint, MJD below and the calendar date above."""
    grid = {"gridcolor": "#e5e7eb", "linecolor": "#9ca3af", "zeroline": False, "showline": True}
    return {
        # The empty "none" template: plotly's default one costs ~50 ms to validate on every page.
        "template": "none",
        "height": 520,
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#1d2330"},
        "margin": {"l": 60, "r": 20, "t": 60, "b": 50},
        "hovermode": "closest",
        "legend": {"title": {"text": "band (survey)"}, "groupclick": "togglegroup"},
        # ".5~f": whole days as 57690, zoomed-in ticks with up to five decimals, never "57.7k".
        "xaxis": {"title": {"text": "MJD"}, "range": x_range, "autorange": False, "tickformat": ".5~f"}
        | grid,
        "xaxis2": {
            "title": {"text": "date (UTC)"},
            "type": "date",
            "overlaying": "x",
            "side": "top",
            "range": mjd_to_iso(x_range),
            "autorange": False,
            "fixedrange": True,
            # plotly.js 4 syncs an overlaying axis's ticks to the MJD ticks, which land seconds
            # before midnight and are labelled with the previous day; its own date ticks fall
            # on exact UTC days.
            "tickmode": "auto",
            **grid,
            "showgrid": False,
        },
        "yaxis": {"title": {"text": "magnitude"}, "autorange": "reversed", **grid},
    }


HOVER_GAIA = (
    "<b>Gaia G</b> (Gaia Science Alerts): %{y:.2f} ± %{error_y.array:.3f} (approximate error)<br>"
    "MJD %{x:.5f} UTC<extra></extra>"
)


def gaia_trace(gaia: tuple[list, list, list]) -> dict:
    """Gaia's own G photometry: a separate series (grey line), never mixed with follow-up points."""
    mjd, mag, err = gaia
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "x": np.asarray(mjd, dtype=float),
        "y": np.asarray(mag, dtype=float),
        "name": "Gaia G (alerts; approx. errors)",
        "legendgroup": "gaia-alerts",
        "line": {"color": "#9ca3af", "width": 1},
        "marker": {"color": "#4d4d4d", "size": 5, "symbol": "circle-open"},
        "error_y": {
            "type": "data",
            "array": np.asarray(err, dtype=float),
            "thickness": 1,
            "color": "#9ca3af",
        },
        "hovertemplate": HOVER_GAIA,
    }


def lightcurve_figure(lc: LightCurve, gaia: tuple[list, list, list] | None = None) -> go.Figure:
    """The light curve: traces by band and survey, limits as downward arrows, two time axes.

    ``gaia`` adds the alert's Gaia G series; the range then covers it too.
    """
    mjd = np.asarray(lc.mjd, dtype=float)
    if gaia:
        mjd = np.concatenate([mjd, np.asarray(gaia[0], dtype=float)])
    x_range = date_range(mjd) if len(mjd) else [MJD_UNIX_EPOCH, MJD_UNIX_EPOCH + 1]
    # An invisible trace on the calendar axis makes plotly draw it; the page keeps it aligned.
    calendar = {
        "type": "scatter",
        "x": mjd_to_iso(x_range),
        "y": [float(np.nanmedian(np.asarray(lc.mag or gaia[1], dtype=float)))] * 2 if len(mjd) else [0, 0],
        "xaxis": "x2",
        "mode": "markers",
        "marker": {"opacity": 0},
        "hoverinfo": "skip",
        "showlegend": False,
        "name": "calendar",
    }
    # Built from dicts in one go: plotly then validates each trace once instead of twice.
    traces = [*_traces(lc), *([gaia_trace(gaia)] if gaia else [])]
    return go.Figure(data=[*traces, calendar], layout=_layout(x_range))


class ScriptJSONEncoder(PlotlyJSONEncoder):
    """Plotly's encoder, writing <, > and & as JSON escapes itself.

    json_script escapes them with str.translate, which leaves CPython's fast ASCII path at the
    first '<' (every hover template has one) and then costs ~0.1 s per megabyte; escaped here
    with str.replace the result is the same and json_script finds nothing left to do.
    """

    def encode(self, o):
        text = super().encode(o)
        return text.replace("&", "\\u0026").replace("<", "\\u003C").replace(">", "\\u003E")


def figure_script(figure: go.Figure) -> str:
    """The figure as a JSON <script> element: plotly's encoder inside Django's json_script."""
    return json_script(figure.to_plotly_json(), FIGURE_ID, encoder=ScriptJSONEncoder)
