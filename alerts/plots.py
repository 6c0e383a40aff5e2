"""The interactive light-curve figure, built with plotly from a LightCurve's arrays."""

import html

import numpy as np
import plotly.graph_objects as go
from django.utils.html import json_script
from plotly.utils import PlotlyJSONEncoder

from calibration.surveys import BANDS

from .lightcurves import MJD_UNIX_EPOCH, LightCurve, mjd_to_iso

#: Colour-blind-safe colours of the common bands (Okabe & Ito, and Paul Tol's "muted" set for the
#: rest), each band also with its own marker shape, so that r, R, i, I, z and y stay apart for
#: every kind of colour vision and in grey. Other bands take the fallback palette and shapes.
BAND_STYLES = {
    "u": ("#882255", "pentagon"),
    "U": ("#aa4499", "hexagon"),
    "B": ("#0072b2", "star-triangle-up"),
    "B1pg": ("#332288", "square"),
    "B2pg": ("#6699cc", "square"),
    "g": ("#009e73", "triangle-down"),
    "V": ("#56b4e9", "triangle-up"),
    "G": ("#888888", "circle"),
    "BP": ("#332288", "triangle-left"),
    "RP": ("#882255", "triangle-right"),
    "r": ("#e69f00", "circle"),
    "R": ("#d55e00", "square"),
    "R1pg": ("#cc6677", "circle"),
    "R2pg": ("#cc6677", "square"),
    "i": ("#cc79a7", "diamond"),
    "I": ("#999933", "cross"),
    "z": ("#44aa99", "x"),
    "y": ("#ddcc77", "star"),
    "J": ("#117733", "hourglass"),
    "H": ("#661100", "bowtie"),
    "K": ("#6699cc", "star-diamond"),
}
BAND_COLOURS = {band: colour for band, (colour, _) in BAND_STYLES.items()}
FALLBACK_COLOURS = ("#0077bb", "#33bbee", "#009988", "#ee7733", "#cc3311", "#ee3377", "#bbbbbb")
FALLBACK_SHAPES = ("star-square", "hexagram", "triangle-down", "circle-cross", "square-x", "asterisk")
#: The survey of a point is the fill of its band's marker: a band measured against two surveys
#: shows filled and open markers of one shape.
SURVEY_VARIANTS = ("", "-open", "-dot", "-open-dot")
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


def band_shape(band: str, order: list[str]) -> str:
    """The band's own marker shape, or a fallback one by its place in ``order``."""
    style = BAND_STYLES.get(band)
    return style[1] if style else FALLBACK_SHAPES[order.index(band) % len(FALLBACK_SHAPES)]


def marker_symbol(band: str, survey: str, bands: list[str], surveys: list[str]) -> str:
    """The band's shape, filled for the first survey of the curve, open or dotted for the others."""
    return band_shape(band, bands) + SURVEY_VARIANTS[surveys.index(survey) % len(SURVEY_VARIANTS)]


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

    def symbol(name: str, ref: str) -> str:
        return marker_symbol(name, ref, bands, surveys)

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
                    "marker": {"color": colour, "size": 8, "symbol": symbol(name, ref)},
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


#: On a phone the legend goes below the plot, which grows to keep its plotting area.
NARROW_LAYOUT = {
    "height": 680,
    "margin": {"l": 50, "r": 10, "t": 60, "b": 40},
    "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.12, "yanchor": "top"},
}


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
    """The figure as a JSON <script> element: plotly's encoder inside Django's json_script.

    ``narrow_layout`` is laid over the layout on phones by the page.
    """
    content = figure.to_plotly_json() | {"narrow_layout": NARROW_LAYOUT}
    return json_script(content, FIGURE_ID, encoder=ScriptJSONEncoder)
