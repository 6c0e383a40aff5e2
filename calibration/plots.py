"""Calibration diagnostic plots from plain arrays: an interactive plotly figure and a PNG.

The PNG (for ``image_link``) is drawn with matplotlib's Agg backend: it needs no browser and
no network, so it works on any fresh machine.
"""

import io

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def _stars(details: dict) -> dict[str, np.ndarray]:
    stars = details.get("stars") or {}
    columns = {}
    keys = ("ref_mag", "inst_mag", "colour", "residual", "ref_err", "inst_err", "inlier_probability")
    for key in (*keys, "source"):
        columns[key] = np.array([np.nan if v is None else v for v in stars.get(key, [])], dtype=float)
    n = len(columns["ref_mag"])
    if len(columns["source"]) != n:
        # Points stored before the catalogue row was kept: number the stars in their stored order.
        columns["source"] = np.arange(1, n + 1, dtype=float)
    columns["is_outlier"] = np.array(stars.get("is_outlier", []), dtype=bool)
    return columns


def _title(details: dict) -> str:
    band = f"{details.get('survey', '?')}/{details.get('filter', '?')}"
    zp = details.get("zeropoint")
    scatter = details.get("scatter")
    text = f"{band}: ZP {zp:.3f}" if zp is not None else band
    if details.get("colour_term") is not None and details.get("colour"):
        text += f", C={details['colour_term']:+.3f} ({details['colour']})"
    if scatter is not None:
        text += f", scatter {scatter:.3f} mag, {details.get('npoints', 0)} stars"
    return text


#: Hover of a calibration star: its catalogue row, both magnitudes with errors, the fit's verdict.
STAR_HOVER = (
    "<b>star %{customdata[0]:.0f}</b> (catalogue row)<br>"
    "reference %{customdata[1]:.3f} ± %{customdata[2]:.3f}<br>"
    "instrumental %{customdata[3]:.3f} ± %{customdata[4]:.3f}<br>"
    "residual %{customdata[5]:+.3f} mag<br>"
    "P(inlier) %{customdata[6]:.2f}<extra>%{fullData.name}</extra>"
)
#: A colour-blind-safe sequential scale for the inlier probability (0 outlier, 1 inlier).
INLIER_SCALE = "Cividis"
PANEL_TITLES = ("reference vs instrumental", "residual vs reference mag", "residual vs colour")


def _customdata(s: dict, mask: np.ndarray) -> np.ndarray:
    columns = ("source", "ref_mag", "ref_err", "inst_mag", "inst_err", "residual", "inlier_probability")
    return np.column_stack([s[key][mask] for key in columns])


def calibration_figure(details: dict, stacked: bool = False) -> go.Figure:
    """Reference vs instrumental magnitude; residuals vs magnitude and colour; outliers and target marked.

    ``stacked`` puts the three panels one above the other (phones); the axes keep their names,
    so the same traces fit either layout.
    """
    s = _stars(details)
    good, bad = ~s["is_outlier"], s["is_outlier"]
    probability = s["inlier_probability"]
    coloured = len(probability) == len(good) and np.isfinite(probability).any()
    if stacked:
        figure = make_subplots(rows=3, cols=1, vertical_spacing=0.1, subplot_titles=PANEL_TITLES)
    else:
        figure = make_subplots(rows=1, cols=3, horizontal_spacing=0.07, subplot_titles=PANEL_TITLES)
    cell = (lambda k: {"row": k, "col": 1}) if stacked else (lambda k: {"row": 1, "col": k})
    scale_shown = False
    for mask, name, colour in ((good, "calibrators", "#0072b2"), (bad, "outliers", "#d55e00")):
        if not mask.any():
            continue
        marker = {"color": colour, "size": 6, "symbol": "circle" if name == "calibrators" else "x"}
        common = {
            "mode": "markers",
            "name": name,
            "legendgroup": name,
            "customdata": _customdata(s, mask),
            "hovertemplate": STAR_HOVER,
            "marker": marker,
        }
        figure.add_trace(
            go.Scattergl(
                x=s["inst_mag"][mask],
                y=s["ref_mag"][mask],
                error_y={"array": s["ref_err"][mask], "thickness": 1},
                **common,
            ),
            **cell(1),
        )
        residual = dict(common, showlegend=False)
        if coloured:
            # The residual panels colour each star by how much the fit believes it (one scale).
            residual["marker"] = dict(
                marker,
                color=probability[mask],
                colorscale=INLIER_SCALE,
                cmin=0,
                cmax=1,
                showscale=not scale_shown,
                colorbar={"title": {"text": "P(inlier)"}, "thickness": 12, "len": 0.8},
            )
            scale_shown = True
        figure.add_trace(go.Scattergl(x=s["ref_mag"][mask], y=s["residual"][mask], **residual), **cell(2))
        if np.isfinite(s["colour"][mask]).any():
            residual = dict(residual, marker=dict(residual["marker"], showscale=False))
            figure.add_trace(go.Scattergl(x=s["colour"][mask], y=s["residual"][mask], **residual), **cell(3))
    inst = details.get("inst_mag")
    if inst is not None and not details.get("is_limit"):
        # WebGL like the calibrators and after them: plotly draws WebGL traces above SVG ones,
        # so an SVG target would hide under the stars it is calibrated against.
        figure.add_trace(
            go.Scattergl(
                x=[inst],
                y=[details["mag"]],
                mode="markers",
                name="target",
                hovertemplate="<b>target</b><br>calibrated %{y:.3f}<br>instrumental %{x:.3f}<extra></extra>",
                marker={"color": "#ff7f0e", "size": 16, "symbol": "star", "line": {"width": 1}},
            ),
            **cell(1),
        )
    if details.get("is_limit"):
        figure.add_hline(
            y=details["mag"], line_dash="dash", line_color="#ff7f0e", annotation_text="5σ limit", **cell(1)
        )
    for k in (2, 3):
        figure.add_hline(y=0, line_color="#888", line_width=1, **cell(k))
    figure.update_xaxes(title_text="instrumental mag", **cell(1))
    figure.update_yaxes(title_text="reference mag", autorange="reversed", **cell(1))
    figure.update_xaxes(title_text="reference mag", **cell(2))
    figure.update_yaxes(title_text="ref − calibrated (mag)", **cell(2))
    figure.update_xaxes(title_text=details.get("colour") or "colour", **cell(3))
    figure.update_layout(
        title=_title(details),
        height=1100 if stacked else 420,
        margin={"l": 60, "r": 20, "t": 70, "b": 50},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.06 if stacked else -0.2},
    )
    if stacked:
        figure.update_layout(title_font_size=12)
    return figure


def calibration_png(details: dict) -> bytes:
    """The same diagnostics as a static PNG, for image_link."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    s = _stars(details)
    good, bad = ~s["is_outlier"], s["is_outlier"]
    figure = Figure(figsize=(12, 4), dpi=80)
    axes = figure.subplots(1, 3)
    for mask, colour, marker, label in (
        (good, "tab:blue", "o", "calibrators"),
        (bad, "tab:red", "x", "outliers"),
    ):
        axes[0].errorbar(
            s["inst_mag"][mask],
            s["ref_mag"][mask],
            yerr=s["ref_err"][mask],
            fmt=marker,
            color=colour,
            ms=3,
            lw=0.5,
            label=label,
        )
        axes[1].plot(s["ref_mag"][mask], s["residual"][mask], marker, color=colour, ms=3)
        axes[2].plot(s["colour"][mask], s["residual"][mask], marker, color=colour, ms=3)
    if details.get("inst_mag") is not None and not details.get("is_limit"):
        axes[0].plot(
            [details["inst_mag"]], [details["mag"]], "*", color="tab:orange", ms=14, label="target", zorder=10
        )
    if details.get("is_limit"):
        axes[0].axhline(details["mag"], color="tab:orange", ls="--", label="5σ limit")
    axes[0].invert_yaxis()
    axes[0].set_xlabel("instrumental mag")
    axes[0].set_ylabel("reference mag")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("reference mag")
    axes[1].set_ylabel("residual (mag)")
    axes[2].set_xlabel(details.get("colour") or "colour")
    for ax in axes[1:]:
        ax.axhline(0, color="grey", lw=0.8)
    figure.suptitle(_title(details), fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
