"""Zero point and colour term per reference band, band choice, target magnitude or limit. No Django.

For the calibrators of a candidate (survey, band), ``y = m_ref - m_inst`` is modelled as::

    y = ZP + C * (colour - pivot) + e
    e ~ N(0, sigma_int^2 + k^2 MAGERR^2 + q^2 ref_err^2 + C^2 colour_err^2)   (the core)

plus outliers on either side, each side a half-normal with its own fraction and width (blends
only ever brighten a source, so a one-sided population must not drag the zero point). The fit
starts from the mode, runs EM on this mixture with REML-corrected variance updates (k and q only
when the stars determine them), keeps an outlier side only if it earns its parameters (BIC), and
reports the covariance of (ZP, C) from the observed information of the mixture likelihood.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
from scipy import stats
from scipy.optimize import nnls

from calibration.catalogs import SourceCatalog
from calibration.matching import FIRST_RADIUS_ARCSEC, LARGE_OFFSET_ARCSEC, CatalogIndex, Match, Nearest
from calibration.surveys import BANDS, COLOUR_OF_BAND, SURVEYS, ReferenceSet
from gsafollowup.errors import BadInput, CalibrationImpossible

#: Stored with every point; bump whenever a result for the same input would change.
ALGORITHM_VERSION = "core-1.0"

#: Guards of the band choice (CALIBRATION.md, step 5).
MIN_CALIBRATORS = 5
MAX_OUTLIER_FRACTION = 0.3
MAX_COLOUR_TERM = 0.5
#: Stars scattering more than this about the fit mean a wrong band (when its colour term could
#: not be fitted, the |C| guard cannot see it) or broken photometry.
MAX_SIGMA_INT = 0.2
#: A first (robust) colour-term estimate beyond this rejects a band without the full fit.
SCREEN_COLOUR_TERM = 2 * MAX_COLOUR_TERM
#: ... and so does a first scatter estimate this many times the best predicted target error.
NOT_COMPETITIVE = 3.0
#: Fewer calibrators than this earn the "few_calibrators" flag.
FEW_CALIBRATORS = 10
#: The colour term is fitted only with this many coloured stars spanning this robust spread (mag).
MIN_COLOUR_STARS = 10
MIN_COLOUR_SPREAD = 0.1
#: The error-scale factors need at least this many stars (and see MAX_SCALE_ERROR).
MIN_STARS_FOR_ERROR_SCALE = 20
ERROR_SCALE_RANGE = (0.5, 10.0)
#: Real reference catalogs misstate their errors too (APASS often by 2-5x, star to star):
#: the same treatment, with room for overstated errors.
REF_ERROR_SCALE_RANGE = (0.2, 5.0)
#: An error scale is fitted only if the stars determine it to this (Fisher standard error).
MAX_SCALE_ERROR = 0.2
#: Calibrators: instrumental error at most this (S/N >= 5.4); reference errors at most this.
MAX_CALIBRATOR_ERR = 0.2
MAX_REFERENCE_ERR = 0.5
#: Beyond this many calibrators the zero point's error is far below sigma_int: keep the most
#: precise ones so that a dense survey (thousands of matches) costs no more than a sparse one.
MAX_CALIBRATORS = 1500
#: Reference error assumed when a survey gives a magnitude without one.
DEFAULT_REFERENCE_ERR = 0.05
LIMIT_SNR = 5.0
MAX_ITERATIONS = 100
TRIAL_ITERATIONS = 15  # for the BIC test of an outlier side
SIEGEL_SAMPLE = 80  # the repeated-median slope is O(n^2): a start needs no more stars
TOLERANCE = 1e-5  # mag: a hundred times below any error worth reporting
PRIOR_COUNT = 0.1  # pseudo-count of each outlier side, keeps the fractions off 0 and 1
FLOOR_SIGMAS = 5.0  # outlier sides are at least this many core widths wide
MAG_PER_SNR = 2.5 / math.log(10)  # magnitude error of S/N = 1


# ---------------------------------------------------------------- forceFilter


@dataclass(frozen=True)
class ForceFilter:
    """Which candidates the observer allows: ``None`` means any survey or any band."""

    survey: str | None = None
    band: str | None = None

    @property
    def automatic(self) -> bool:
        """No restriction at all (``no``)."""
        return self.survey is None and self.band is None

    @property
    def single(self) -> bool:
        """One (survey, band) forced."""
        return self.survey is not None and self.band is not None

    def allows(self, survey: str, band: str) -> bool:
        """True when the candidate (survey, band) is permitted."""
        return (self.survey is None or self.survey == survey) and (self.band is None or self.band == band)

    def __str__(self) -> str:
        return "no" if self.automatic else f"{self.survey or 'any'}/{self.band or 'any'}"


_FORCE_GRAMMAR = "forceFilter must be 'no', 'SURVEY/BAND', 'SURVEY/any' or 'any/BAND'"


def parse_force_filter(value: "str | ForceFilter | None") -> ForceFilter:
    """Parse ``no``, ``SURVEY/BAND``, ``SURVEY/any`` or ``any/BAND``; raise BadInput otherwise."""
    if isinstance(value, ForceFilter):
        return value
    text = (value or "").strip()
    if text.lower() in ("", "no"):
        return ForceFilter()
    parts = text.split("/")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise BadInput(_FORCE_GRAMMAR)
    survey_text, band_text = (p.strip() for p in parts)
    survey = None
    if survey_text.lower() != "any":
        survey = next((name for name in SURVEYS if name.lower() == survey_text.lower()), None)
        if survey is None:
            raise BadInput(f"unknown survey '{survey_text[:20]}' in forceFilter; known: {', '.join(SURVEYS)}")
    band = None
    if band_text.lower() != "any":
        if band_text not in BANDS:
            raise BadInput(f"unknown band '{band_text[:10]}' in forceFilter (bands are case-sensitive)")
        if survey is not None and band_text not in SURVEYS[survey].bands:
            raise BadInput(f"{survey} has no band {band_text}; it has {' '.join(SURVEYS[survey].bands)}")
        band = band_text
    return ForceFilter(survey, band)


# ---------------------------------------------------------------- robust helpers


def half_sample_mode(values: np.ndarray) -> float:
    """Mode of a sample by repeated halving to the densest half (Bickel & Fruehwirth 2006)."""
    x = np.sort(np.asarray(values, dtype=float))
    while len(x) > 3:
        half = (len(x) + 1) // 2
        widths = x[half - 1 :] - x[: len(x) - half + 1]
        start = int(np.argmin(widths))
        x = x[start : start + half]
    if len(x) == 3:
        gaps = np.diff(x)
        if gaps[0] < gaps[1]:
            return float(x[:2].mean())
        if gaps[1] < gaps[0]:
            return float(x[1:].mean())
        return float(x[1])
    return float(x.mean())


def robust_std(values: np.ndarray) -> float:
    """Normalised median absolute deviation (equals the std for a Gaussian)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


# ---------------------------------------------------------------- one band


@dataclass
class BandFit:
    """The fit of one candidate band; per-star arrays cover the stars that entered it."""

    zeropoint: float
    colour_term: float
    pivot: float
    covariance: np.ndarray  # of (zeropoint at the pivot, colour term)
    colour_fitted: bool
    sigma_int: float
    error_scale: float
    error_scale_fitted: bool
    ref_error_scale: float
    colour_spread: float  # robust spread of calibrator colours: the prior on an unknown colour
    used: np.ndarray  # mask over the input stars
    residual: np.ndarray
    inlier_probability: np.ndarray
    weight: np.ndarray
    outlier_fraction: float
    scatter: float
    slope_diagnostic: float
    iterations: int

    @property
    def n(self) -> int:
        """Calibrators that entered the fit."""
        return int(self.used.sum())

    def calibration_variance(self, colour: float | None = None) -> float:
        """Variance the calibration adds to a source: model at its colour (or unknown) plus sigma_int."""
        if colour is not None and np.isfinite(colour) and self.colour_fitted:
            gradient = np.array([1.0, colour - self.pivot])
            model = float(gradient @ self.covariance @ gradient)
        else:
            # Unknown colour: taken at the pivot, with the calibrators' colour spread as its prior.
            model = float(self.covariance[0, 0])
            model += (self.colour_term**2 + self.covariance[1, 1]) * self.colour_spread**2
        return model + self.sigma_int**2

    def predict(self, inst_mag, inst_err, colour=None) -> tuple[float, float, float]:
        """(calibrated magnitude, statistical error, calibration error) of one source."""
        shift = 0.0
        if colour is not None and np.isfinite(colour) and self.colour_fitted:
            shift = self.colour_term * (colour - self.pivot)
        calibration = math.sqrt(self.calibration_variance(colour))
        return float(inst_mag + self.zeropoint + shift), float(self.error_scale * inst_err), calibration


def fit_band(ref_mag, ref_err, inst_mag, inst_err, colour=None, colour_err=None) -> BandFit:
    """Robust fit of ``m_ref - m_inst = ZP + C*(colour - pivot)`` with sigma_int, error scales, outliers."""
    return _fit(_BandData.of(ref_mag, ref_err, inst_mag, inst_err, colour, colour_err))


@dataclass
class _BandData:
    """The stars of one fit, the colour decision, and their variance model."""

    y: np.ndarray
    x: np.ndarray  # colour minus pivot (zeros when the colour term is not fitted)
    inst: np.ndarray
    used: np.ndarray  # mask over the input stars
    pivot: float
    colour_fitted: bool
    model: "_VarianceModel"

    @classmethod
    def of(cls, ref_mag, ref_err, inst_mag, inst_err, colour=None, colour_err=None) -> "_BandData":
        """Decide whether the colour term can be fitted, and keep the stars the fit will use."""
        y_all = np.asarray(ref_mag, dtype=float) - np.asarray(inst_mag, dtype=float)
        n_all = len(y_all)
        if n_all < 3:
            raise ValueError("fit_band needs at least 3 stars")
        colour = np.full(n_all, np.nan) if colour is None else np.asarray(colour, dtype=float)
        colour_err = np.zeros(n_all) if colour_err is None else np.nan_to_num(np.asarray(colour_err, float))
        has_colour = np.isfinite(colour)
        colour_fitted = bool(
            has_colour.sum() >= max(MIN_COLOUR_STARS, 0.5 * n_all)
            and robust_std(colour[has_colour]) >= MIN_COLOUR_SPREAD
        )
        used = has_colour if colour_fitted else np.ones(n_all, dtype=bool)
        pivot = float(np.median(colour[has_colour])) if has_colour.any() else 0.0
        model = _VarianceModel(
            np.asarray(inst_err, dtype=float)[used] ** 2,
            np.asarray(ref_err, dtype=float)[used] ** 2,
            colour_err[used] ** 2 if colour_fitted else np.zeros(used.sum()),
        )
        return cls(
            y=y_all[used],
            x=colour[used] - pivot if colour_fitted else np.zeros(used.sum()),
            inst=np.asarray(inst_mag, dtype=float)[used],
            used=used,
            pivot=pivot,
            colour_fitted=colour_fitted,
            model=model,
        )

    def start(self) -> tuple[float, float, float]:
        """Initial (ZP, C, core scale) from the mode: immune to any minority of outliers."""
        slope = 0.0
        if self.colour_fitted:
            step = -(-len(self.y) // SIEGEL_SAMPLE)
            slope = float(stats.siegelslopes(self.y[::step], self.x[::step]).slope)
        residual = self.y - slope * self.x
        a = half_sample_mode(residual)
        scale = max(1.4826 * float(np.median(np.abs(residual - a))), 1e-3)
        return a, slope, scale


def _fit(data: _BandData, start: tuple[float, float, float] | None = None) -> BandFit:
    model = data.model
    a, slope, responsibility, covariance, iterations = _em(data, start or data.start())
    residual = data.y - a - slope * data.x
    inlier = responsibility >= 0.5
    weight = responsibility / model.variance(slope)
    spread = robust_std(data.x[inlier]) if data.colour_fitted and inlier.sum() >= 2 else 0.0
    return BandFit(
        zeropoint=float(a),
        colour_term=float(slope),
        pivot=data.pivot,
        covariance=covariance,
        colour_fitted=data.colour_fitted,
        sigma_int=model.sigma_int,
        error_scale=model.error_scale,
        error_scale_fitted=bool(model.active[1]),
        ref_error_scale=model.ref_error_scale,
        colour_spread=spread,
        used=data.used,
        residual=residual,
        inlier_probability=responsibility,
        weight=weight,
        outlier_fraction=float(1.0 - inlier.mean()),
        scatter=robust_std(residual),
        slope_diagnostic=_slope(data.inst[inlier], residual[inlier], weight[inlier]),
        iterations=iterations,
    )


class _VarianceModel:
    """Core variance of each star: ``sigma_int^2 + k^2 MAGERR^2 + q^2 ref_err^2 + C^2 colour_err^2``.

    sigma_int^2 is always fitted. The scales k (instrument) and q (reference catalog) are fitted
    only when the stars can tell them from sigma_int: their Fisher standard error must be small
    (``MAX_SCALE_ERROR``), which needs many stars whose errors of that kind vary and matter.
    """

    def __init__(self, e2: np.ndarray, r2: np.ndarray, c2: np.ndarray):
        self.terms = np.vstack((np.ones_like(e2), e2, r2))  # multiplied by (s2, k2, q2)
        self.c2 = c2
        self.theta = np.array([0.0, 1.0, 1.0])
        self.low = np.array([0.0, ERROR_SCALE_RANGE[0] ** 2, REF_ERROR_SCALE_RANGE[0] ** 2])
        self.high = np.array([np.inf, ERROR_SCALE_RANGE[1] ** 2, REF_ERROR_SCALE_RANGE[1] ** 2])
        self.active = np.array([True, False, False])

    def variance(self, slope: float) -> np.ndarray:
        """Core variance of each star at colour term ``slope``."""
        return self.theta @ self.terms + slope**2 * self.c2

    def choose_scales(self, s2: float) -> None:
        """Start at sigma_int^2 = s2 and activate the error scales the data can determine."""
        self.theta[0] = s2
        if self.terms.shape[1] < MIN_STARS_FOR_ERROR_SCALE:
            return
        candidates = [j for j in (1, 2) if np.ptp(self.terms[j]) > 0]
        while candidates:
            active = [0, *candidates]
            fisher = self._fisher(np.ones(self.terms.shape[1]), self.variance(0.0), active)
            try:
                errors = np.sqrt(np.diag(np.linalg.inv(fisher)))[1:] / 2  # of k and q, at 1
            except np.linalg.LinAlgError:
                errors = np.full(len(candidates), np.inf)
            worst = int(np.argmax(errors))
            if errors[worst] <= MAX_SCALE_ERROR:
                self.active[candidates] = True
                return
            candidates.pop(worst)

    def _objective(self, squared, membership, slope, theta) -> float:
        """Gaussian log-likelihood of the core's (REML-corrected) squared residuals."""
        variance = theta @ self.terms + slope**2 * self.c2
        return float(-0.5 * (membership * (np.log(variance) + squared / variance)).sum())

    def _fisher(self, membership, variance, active) -> np.ndarray:
        terms = self.terms[active]
        return 0.5 * (terms * (membership / variance**2)) @ terms.T

    def step(self, squared: np.ndarray, membership: np.ndarray, slope: float) -> float:
        """One Fisher-scoring step on the active components; returns the change of sigma_int."""
        if not self.active[1:].any():
            # Only sigma_int^2: a scalar step, clipped at zero (the common case, kept cheap).
            variance = self.variance(slope)
            weight = membership / variance**2
            before = self.sigma_int
            self.theta[0] = max(
                self.theta[0] + float((weight * (squared - variance)).sum() / weight.sum()), 0.0
            )
            return abs(self.sigma_int - before)
        before = self.theta.copy()
        free = self.active.copy()
        pinned_any = False
        # Projected Newton: a component that would cross its bound is pinned there and the step is
        # solved again for the others (clipping alone makes the joint step oscillate).
        while free.any():
            variance = self.variance(slope)
            index = np.nonzero(free)[0]
            gradient = 0.5 * self.terms[index] @ (membership * (squared - variance) / variance**2)
            try:
                change = np.linalg.solve(self._fisher(membership, variance, index), gradient)
            except np.linalg.LinAlgError:
                break
            proposed = before[index] + change
            outside = (proposed < self.low[index]) | (proposed > self.high[index])
            if not outside.any():
                self.theta[index] = proposed
                break
            pinned = index[outside]
            self.theta[pinned] = np.clip(proposed[outside], self.low[pinned], self.high[pinned])
            free[pinned] = False
            pinned_any = True
        if pinned_any:
            # Near a bound, Fisher scoring may overshoot: halve the step until the likelihood improves.
            target = self._objective(squared, membership, slope, before)
            for _ in range(8):
                if self._objective(squared, membership, slope, self.theta) >= target:
                    break
                self.theta = 0.5 * (self.theta + before)
        # Compare like with like: sigma_int in mag, the scales' (dimensionless) change times 1%.
        moved = abs(self.sigma_int - math.sqrt(before[0])) + 0.01 * float(
            np.abs(self.theta[1:] - before[1:]).sum()
        )
        return moved

    @property
    def sigma_int(self) -> float:
        """Intrinsic scatter (mag)."""
        return float(math.sqrt(self.theta[0]))

    @property
    def error_scale(self) -> float:
        """k: true over reported MAGERR_AUTO."""
        return float(math.sqrt(self.theta[1]))

    @property
    def ref_error_scale(self) -> float:
        """q: true over quoted reference errors."""
        return float(math.sqrt(self.theta[2]))


@dataclass
class _Outliers:
    """The outlier part of the likelihood: per side (positive, negative) a fraction and a width.

    Each side is a half-normal starting at the model: blends only ever brighten a source, so a
    side can hold a one-sided population without dragging the zero point.
    """

    fraction: np.ndarray
    width: np.ndarray
    floor: float
    enabled: np.ndarray

    def memberships(self, eps: np.ndarray, variance: np.ndarray):
        """(core probability, outlier probability, negative-side mask, log-likelihood) of residuals.

        A residual can only belong to the side it lies on. Computed from log densities: a residual
        of several magnitudes underflows every density, yet it must still come out an outlier.
        """
        fraction = self.fraction * self.enabled
        eps2 = eps**2
        log_core = math.log1p(-fraction.sum()) - 0.5 * (eps2 / variance + np.log(2 * np.pi * variance))
        constant = [
            math.log(2 * f) - 0.5 * math.log(2 * math.pi * w**2) if f > 0 else -math.inf
            for f, w in zip(fraction, self.width, strict=True)
        ]
        negative = eps <= 0
        inverse_w2 = 1.0 / self.width**2
        log_side = np.where(negative, constant[1], constant[0]) - 0.5 * eps2 * np.where(
            negative, inverse_w2[1], inverse_w2[0]
        )
        log_total = np.logaddexp(log_core, log_side)
        return np.exp(log_core - log_total), np.exp(log_side - log_total), negative, float(log_total.sum())

    def update(self, outlier: np.ndarray, negative: np.ndarray, eps: np.ndarray) -> None:
        """M-step of the fractions (with a small prior count) and widths (never below the floor)."""
        counts = np.bincount(negative, weights=outlier, minlength=2)
        self.fraction = (counts + PRIOR_COUNT) / (eps.size + 3 * PRIOR_COUNT)
        spread = np.sqrt(
            np.bincount(negative, weights=outlier * eps**2, minlength=2) / np.maximum(counts, 1e-12)
        )
        self.width = np.maximum(np.where(counts > 0.5, spread, self.width), self.floor)

    def width_at(self, negative: np.ndarray) -> np.ndarray:
        """Width of the outlier side each residual lies on."""
        return np.where(negative, self.width[1], self.width[0])


def _em(data: _BandData, start: tuple[float, float, float]):
    """EM on the core-plus-one-sided-outliers mixture; returns (ZP, C, memberships, cov, iterations).

    A side of outliers must earn its two parameters (BIC): otherwise a chance excess in one
    Gaussian tail, read as outliers, would shrink sigma_int and pull the zero point.
    """
    y, x, model = data.y, data.x, data.model
    n = len(y)
    design = np.column_stack((np.ones(n), x)) if data.colour_fitted else np.ones((n, 1))
    a, slope, scale = start
    known = float(np.median(model.variance(0.0)))
    model.choose_scales(max(scale**2 - known, 0.0))
    # Outlier sides stay well wider than the core so that the two remain distinct.
    floor = max(FLOOR_SIGMAS * math.sqrt(known + model.theta[0]), 0.03)
    # Each side starts as wide as its obvious outliers: a narrower start would leave a star
    # several magnitudes off to the core (whose tail then beats the outlier side's).
    eps = y - a - slope * x
    width = np.empty(2)
    for side, far in enumerate((eps > 3 * scale, eps < -3 * scale)):
        width[side] = math.sqrt(float(np.mean(eps[far] ** 2))) if far.any() else max(5.0 * scale, 0.1)
    outliers = _Outliers(np.array([0.05, 0.05]), np.maximum(width, floor), floor, np.array([True, True]))
    a, slope, iterations, loglik = _iterate(data, a, slope, outliers)
    for side in (0, 1):
        variance = model.variance(slope)
        eps = y - a - slope * x
        _, outlier, negative, _ = outliers.memberships(eps, variance)
        on_side = outlier * (negative == bool(side))
        members = on_side > 0.5
        if on_side.sum() < 0.5 or (
            members.any() and np.min(np.abs(eps[members]) / np.sqrt(variance[members])) > 8
        ):
            continue  # no outliers on this side, or only ones no Gaussian tail could explain
        saved = (model.theta.copy(), replace(outliers, enabled=outliers.enabled.copy()))
        outliers.enabled[side] = False
        # A side that matters shows at once as a large loss of likelihood: no need to converge
        # that trial (its likelihood only rises with iterations, so the test stays conservative).
        trial = _iterate(data, a, slope, outliers, TRIAL_ITERATIONS)
        iterations += trial[2]
        if loglik - trial[3] < math.log(n):
            if trial[2] == TRIAL_ITERATIONS:
                trial = _iterate(data, trial[0], trial[1], outliers)
                iterations += trial[2]
            a, slope, _, loglik = trial
        else:
            model.theta, outliers = saved
    variance = model.variance(slope)
    eps = y - a - slope * x
    core, outlier, negative, _ = outliers.memberships(eps, variance)
    covariance = _covariance(design, eps, variance, core, outlier, outliers.width_at(negative))
    return a, slope, core, covariance, iterations


def _iterate(data: _BandData, a: float, slope: float, outliers: _Outliers, most: int = MAX_ITERATIONS):
    """EM iterations to convergence (or ``most``); returns (ZP, C, iterations, log-likelihood)."""
    y, x, model = data.y, data.x, data.model
    iterations = 0
    for iterations in range(1, most + 1):  # noqa: B007 (the count is returned)
        variance = model.variance(slope)
        core, outlier, negative, _ = outliers.memberships(y - a - slope * x, variance)
        weight = core / variance
        # Weighted least squares for (ZP, C), written out: numpy's 2x2 solvers cost more than this.
        s0, t0 = weight.sum(), (weight * y).sum()
        if data.colour_fitted:
            wx = weight * x
            s1, s2, t1 = wx.sum(), (wx * x).sum(), (wx * y).sum()
            det = s0 * s2 - s1 * s1
            new_a, new_slope = (s2 * t0 - s1 * t1) / det, (s0 * t1 - s1 * t0) / det
            leverage = weight * (s2 - 2 * s1 * x + s0 * x * x) / det
        else:
            new_a, new_slope = t0 / s0, 0.0
            leverage = weight / s0
        new_a, new_slope = float(new_a), float(new_slope)
        eps = y - new_a - new_slope * x
        # REML: a residual's expected square is V(1 - leverage), so undo the leverage.
        change = model.step(eps**2 / (1.0 - np.minimum(leverage, 0.9)), core, new_slope)
        outliers.update(outlier, negative, eps)
        change = max(change, abs(new_a - a), abs(new_slope - slope))
        a, slope = new_a, new_slope
        if change < TOLERANCE:
            break
    loglik = outliers.memberships(y - a - slope * x, model.variance(slope))[3]
    return a, slope, iterations, loglik


def _covariance(design, eps, variance, core, outlier, width):
    """Covariance of (ZP, C) from the observed information of the mixture likelihood.

    The observed information knows that a star's membership of the core is uncertain, which the
    weighted least-squares matrix does not; a small-sample factor n/(n-p) follows REML.
    ``width`` is the width of the outlier side each residual lies on.
    """
    w2 = width**2
    # First and second derivatives of each star's likelihood in its residual, over the likelihood.
    first = -(core * eps / variance + outlier * eps / w2)
    second = core * (eps**2 / variance**2 - 1.0 / variance) + outlier * (eps**2 / w2**2 - 1.0 / w2)
    curvature = -(second - first**2)
    information = design.T @ (curvature[:, None] * design)
    try:
        covariance = np.linalg.inv(information)
        if np.any(np.diag(covariance) <= 0) or not np.all(np.isfinite(covariance)):
            raise np.linalg.LinAlgError("observed information not positive definite")
    except np.linalg.LinAlgError:
        covariance = np.linalg.inv(design.T @ ((core / variance)[:, None] * design))
    n_effective = float(core.sum())
    p = design.shape[1]
    covariance = covariance * min(n_effective / max(n_effective - p, 1.0), 3.0)
    full = np.zeros((2, 2))
    full[:p, :p] = covariance
    return full


def _slope(inst, residual, weight) -> float:
    """Weighted slope of residual against instrumental magnitude: a diagnostic (non-linearity)."""
    if len(inst) < 3 or weight.sum() <= 0:
        return 0.0
    centre = np.average(inst, weights=weight)
    denominator = float((weight * (inst - centre) ** 2).sum())
    if denominator <= 0:
        return 0.0
    return float((weight * (inst - centre) * residual).sum() / denominator)


# ---------------------------------------------------------------- limit


@dataclass
class Limit:
    """Instrumental magnitude where the frame reaches a given S/N, from its own error curve."""

    inst_mag: float
    snr: float
    extrapolated: bool


def detection_limit(catalog: SourceCatalog, snr: float = LIMIT_SNR, error_scale: float = 1.0) -> Limit:
    """Fit 1/SNR^2 = a + b*F^-1 + c*F^-2 to the frame's sources and solve for the given S/N."""
    ok = catalog.photometry_ok() & (catalog.magerr < MAG_PER_SNR)
    mag, err = catalog.mag[ok], catalog.magerr[ok]
    if len(mag) < 10:
        raise CalibrationImpossible("too few measured sources on the frame to estimate a limit")
    reference = float(np.median(mag))
    # Medians in magnitude bins: robust to the odd source with a wild error.
    edges = np.arange(mag.min(), mag.max() + 0.5, 0.25)
    inverse_snr2 = (err / MAG_PER_SNR) ** 2
    counts, _, _ = stats.binned_statistic(mag, mag, statistic="count", bins=edges)
    mags, _, _ = stats.binned_statistic(mag, mag, statistic="median", bins=edges)
    inverse_snr2, _, _ = stats.binned_statistic(mag, inverse_snr2, statistic="median", bins=edges)
    keep = counts >= 3
    if keep.sum() < 3:
        raise CalibrationImpossible("the frame's magnitudes span too little to estimate a limit")
    mags, inverse_snr2 = mags[keep], inverse_snr2[keep]
    flux_ratio = 10 ** (0.4 * (mags - reference))  # F_ref / F
    design = np.column_stack((np.ones_like(flux_ratio), flux_ratio, flux_ratio**2)) / inverse_snr2[:, None]
    (floor, linear, quadratic), _ = nnls(design, np.ones(len(mags)))
    target = 1.0 / (snr * error_scale) ** 2
    if target <= floor or (linear <= 0 and quadratic <= 0):
        raise CalibrationImpossible("the frame's error curve never reaches the limit S/N")
    if quadratic > 0:
        ratio = (-linear + math.sqrt(linear**2 + 4 * quadratic * (target - floor))) / (2 * quadratic)
    else:
        ratio = (target - floor) / linear
    limit = reference + 2.5 * math.log10(ratio)
    return Limit(inst_mag=float(limit), snr=snr, extrapolated=bool(limit > mag.max() + 0.5))


# ---------------------------------------------------------------- the whole calibration


@dataclass
class CalibrationResult:
    """Everything one calibration produces: the answer, its parameters, and the diagnostics."""

    mag: float
    mag_err: float  # -1.0 for an upper limit (legacy convention)
    is_limit: bool
    mag_err_stat: float  # -1.0 for an upper limit
    calib_err: float
    ra: float
    dec: float
    zeropoint: float
    zeropoint_err: float
    colour_term: float
    colour_term_err: float
    colour: str | None
    colour_pivot: float
    colour_term_fitted: bool
    covariance: list[list[float]]
    sigma_int: float
    error_scale: float
    outlier_fraction: float
    scatter: float
    npoints: int
    filter: str
    survey: str
    radius_arcsec: float
    offset_ra_arcsec: float
    offset_dec_arcsec: float
    inst_mag: float | None
    inst_mag_err: float | None
    limit_snr: float | None
    slope_diagnostic: float
    runner_up: dict | None
    flags: list[str]
    candidates: list[dict]
    stars: dict[str, list]
    ref_error_scale: float = 1.0  # fitted scale of the reference catalog's errors (an addition)
    algorithm_version: str = ALGORITHM_VERSION
    #: Surveys whose archive or catalog could not answer, with the reason: calibrated without them.
    missing_surveys: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-serialisable values; NaN and infinities become None."""
        # Not dataclasses.asdict: it deep-copies every list and array only for _plain to build
        # them all again (2-3 ms a result); _plain alone returns fresh containers throughout.
        return _plain({item.name: getattr(self, item.name) for item in fields(self)})


def _plain(value):
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return [v if math.isfinite(v) else None for v in value.tolist()]
    if isinstance(value, np.ndarray) and value.dtype.kind in "biu":
        return value.tolist()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


@dataclass
class _Candidate:
    """One (survey, band) that could calibrate the frame, and what became of it."""

    survey: str
    band: str
    match: Match
    target: Nearest
    stars: dict[str, np.ndarray]
    colour_name: str | None
    fit: BandFit | None = None
    predicted_err: float = math.inf
    rejected: str | None = None
    initial_colour_term: float | None = None  # set when screened out before the full fit

    def summary(self) -> dict:
        """What the observer may want to know about this candidate (JSON-ready)."""
        fit = self.fit
        return {
            "survey": self.survey,
            "filter": self.band,
            "n": int(fit.n if fit else len(self.stars["y"])),
            "predicted_err": self.predicted_err if fit else None,
            "zeropoint": fit.zeropoint if fit else None,
            "colour_term": fit.colour_term if fit else self.initial_colour_term,
            "colour_term_fitted": bool(fit.colour_fitted) if fit else False,
            "sigma_int": fit.sigma_int if fit else None,
            "error_scale": fit.error_scale if fit else None,
            "ref_error_scale": fit.ref_error_scale if fit else None,
            "outlier_fraction": fit.outlier_fraction if fit else None,
            "scatter": fit.scatter if fit else None,
            "rejected": self.rejected,
        }


def calibrate(
    catalog: SourceCatalog,
    references: Sequence[ReferenceSet],
    target_ra: float,
    target_dec: float,
    match_dist_arcsec: float | None = None,
    force_filter: "str | ForceFilter" = "no",
) -> CalibrationResult:
    """Calibrate a frame against reference stars and measure (or limit) the target."""
    force = parse_force_filter(force_filter)
    if not (np.isfinite(target_ra) and np.isfinite(target_dec) and abs(target_dec) <= 90):
        raise BadInput("the target position is not a valid RA/Dec in degrees")
    references = [r for r in references if len(r) > 0]
    if not references:
        raise CalibrationImpossible("no reference stars in the field of this catalog")
    index = CatalogIndex(catalog.ra, catalog.dec)
    usable = catalog.photometry_ok() & (catalog.magerr <= MAX_CALIBRATOR_ERR)
    candidates = []
    for refset in references:
        bands = [band for band in refset.bands() if force.allows(refset.survey, band)]
        if not bands:
            continue
        match = index.match(refset.ra, refset.dec, match_dist_arcsec)
        offset = (match.offset_east_arcsec, match.offset_north_arcsec)
        target = index.nearest(target_ra, target_dec, offset, match.radius_arcsec)
        candidates.extend(_candidate(refset, band, match, target, catalog, usable) for band in bands)
    if not candidates:
        if force.automatic:
            raise CalibrationImpossible("the reference stars in this field have no magnitudes")
        raise CalibrationImpossible(f"forceFilter {force}: no such reference magnitudes in this field")
    # A restriction that leaves one (survey, band), such as any/V in a field only APASS covers,
    # is as much a forced band as APASS/V: the same catalog must get the same answer.
    forced = force.single or (not force.automatic and len(candidates) == 1)
    _evaluate(candidates, catalog, screen=not forced)
    ranked = sorted((c for c in candidates if c.rejected is None), key=lambda c: c.predicted_err)
    flags = []
    if not ranked:
        fitted = [c for c in candidates if c.fit is not None]
        if forced and fitted:
            # The observer insists on this band: answer, but say which guard it failed.
            ranked, flags = fitted, ["forced_band_failed_guards"]
        else:
            raise CalibrationImpossible(_no_band_message(candidates))
    chosen = ranked[0]
    if not force.automatic:
        flags.append("forced_band")
    answer = _answer(chosen, catalog, index, target_ra, target_dec)
    runner_up = None
    if len(ranked) > 1:
        other = _answer(ranked[1], catalog, index, target_ra, target_dec)
        runner_up = {
            "survey": ranked[1].survey,
            "filter": ranked[1].band,
            "mag": other["mag"],
            "mag_err": other["mag_err"],
            "delta_mag": other["mag"] - answer["mag"],
        }
    return _result(chosen, answer, runner_up, flags + answer["flags"], candidates)


def _candidate(refset, band, match, target, catalog, usable) -> _Candidate:
    """Calibrator arrays of one band: matched, measurable, with a reference magnitude."""
    cat, ref = match.cat_index, match.ref_index
    ref_mag = refset.mag[band][ref]
    ref_err = refset.err[band][ref] if band in refset.err else np.full(len(ref), np.nan)
    ref_err = np.where(np.isfinite(ref_err) & (ref_err > 0), ref_err, DEFAULT_REFERENCE_ERR)
    blue, red = COLOUR_OF_BAND.get(band, (band, band))
    colour_name = None
    colour = np.full(len(ref), np.nan)
    colour_err = np.zeros(len(ref))
    if blue != red and blue in refset.mag and red in refset.mag:
        colour_name = f"{blue}-{red}"
        colour = refset.mag[blue][ref] - refset.mag[red][ref]
        errors = [refset.err[b][ref] if b in refset.err else np.zeros(len(ref)) for b in (blue, red)]
        colour_err = np.nan_to_num(np.hypot(*errors))
    keep = usable[cat] & np.isfinite(ref_mag) & (ref_err <= MAX_REFERENCE_ERR)
    if keep.sum() > MAX_CALIBRATORS:
        precision = np.where(keep, ref_err**2 + catalog.magerr[cat] ** 2, np.inf)
        keep = np.zeros_like(keep)
        keep[np.argsort(precision, kind="stable")[:MAX_CALIBRATORS]] = True
    stars = {
        "y": ref_mag[keep] - catalog.mag[cat][keep],
        "ref_mag": ref_mag[keep],
        "ref_err": ref_err[keep],
        "inst_mag": catalog.mag[cat][keep],
        "inst_err": catalog.magerr[cat][keep],
        "colour": colour[keep],
        "colour_err": colour_err[keep],
        "ra": refset.ra[ref][keep],
        "dec": refset.dec[ref][keep],
        "cat_index": cat[keep],
    }
    return _Candidate(refset.survey, band, match, target, stars, colour_name)


def _target_measured(catalog: SourceCatalog, target: Nearest) -> bool:
    if target.index is None:
        return False
    mag, err = catalog.mag[target.index], catalog.magerr[target.index]
    return bool(np.isfinite(mag) and mag < 90 and np.isfinite(err) and err > 0)


def _evaluate(candidates: list[_Candidate], catalog: SourceCatalog, screen: bool) -> None:
    """Fit the candidates, predict the target's error under each, and apply the guards.

    With ``screen`` (not for a single forced band), a candidate whose robust first estimate
    already shows a wrong band, or a scatter that cannot compete with a fitted candidate, is
    rejected without the full fit: that changes no answer, only the time taken.
    """
    started = []
    for candidate in candidates:
        stars = candidate.stars
        n = len(stars["y"])
        if n < MIN_CALIBRATORS:
            candidate.rejected = f"only {n} calibrators (need {MIN_CALIBRATORS})"
            continue
        data = _BandData.of(
            stars["ref_mag"],
            stars["ref_err"],
            stars["inst_mag"],
            stars["inst_err"],
            stars["colour"],
            stars["colour_err"],
        )
        start = data.start()
        if screen and abs(start[1]) > SCREEN_COLOUR_TERM:
            candidate.initial_colour_term = start[1]
            candidate.rejected = f"colour term about {start[1]:+.2f} (first estimate): wrong band"
            continue
        # sigma_int implied by the start: no fit can predict a target error much below it.
        floor = math.sqrt(max(start[2] ** 2 - float(np.median(data.model.variance(start[1]))), 0.0))
        started.append((floor, candidate, data, start))
    best = math.inf
    for floor, candidate, data, start in sorted(started, key=lambda item: item[0]):
        if screen and floor > NOT_COMPETITIVE * best:
            candidate.rejected = f"scatter about {floor:.3f} mag: cannot compete with {best:.3f}"
            continue
        _fit_candidate(candidate, data, start, catalog)
        if candidate.rejected is None:
            best = min(best, candidate.predicted_err)


def _fit_candidate(candidate: _Candidate, data: "_BandData", start, catalog: SourceCatalog) -> None:
    fit = _fit(data, start)
    candidate.fit = fit
    target_err = (
        catalog.magerr[candidate.target.index] if _target_measured(catalog, candidate.target) else 0.0
    )
    candidate.predicted_err = math.sqrt((fit.error_scale * target_err) ** 2 + fit.calibration_variance())
    if fit.n < MIN_CALIBRATORS:
        candidate.rejected = f"only {fit.n} calibrators with colours (need {MIN_CALIBRATORS})"
    elif fit.outlier_fraction >= MAX_OUTLIER_FRACTION:
        candidate.rejected = f"outlier fraction {fit.outlier_fraction:.2f} >= {MAX_OUTLIER_FRACTION}"
    elif abs(fit.colour_term) > MAX_COLOUR_TERM:
        candidate.rejected = f"colour term {fit.colour_term:+.2f} beyond +-{MAX_COLOUR_TERM}: wrong band"
    elif fit.sigma_int > MAX_SIGMA_INT:
        candidate.rejected = f"intrinsic scatter {fit.sigma_int:.2f} mag > {MAX_SIGMA_INT}: wrong band?"
    elif not math.isfinite(candidate.predicted_err):
        candidate.rejected = "the fit did not converge to finite values"


def _no_band_message(candidates: list[_Candidate]) -> str:
    """Why no candidate could calibrate: no match at all, or the guard that stopped the best one."""
    best = max(candidates, key=lambda c: len(c.stars["y"]))
    if not any(len(c.match) for c in candidates):
        # The first stage pairs within FIRST_RADIUS_ARCSEC whatever the radius asked for: pairs
        # there and none at the final radius mean the radius (matchDist) is too small, not the WCS.
        if any(c.match.first_pairs for c in candidates):
            radius = min(c.match.radius_arcsec for c in candidates)
            return f"no reference star matched within {radius:.2g} arcsec: give a larger matchDist or auto"
        return (
            f"no reference star matched a catalog source within {FIRST_RADIUS_ARCSEC:g} arcsec: "
            "is the catalog's WCS right?"
        )
    return f"no usable reference band; best was {best.survey}/{best.band}: {best.rejected}"


def _answer(candidate: _Candidate, catalog, index: CatalogIndex, target_ra, target_dec) -> dict:
    """The target's magnitude (or 5-sigma limit) under one candidate's calibration."""
    fit = candidate.fit
    target = candidate.target
    offset = (candidate.match.offset_east_arcsec, candidate.match.offset_north_arcsec)
    flags = []
    if target.index is not None and not _target_measured(catalog, target):
        flags.append("target_photometry_failed")
    if _target_measured(catalog, target):
        inst, inst_err = float(catalog.mag[target.index]), float(catalog.magerr[target.index])
        mag, stat, calib = fit.predict(inst, inst_err)
        ra, dec = index.corrected_position(target.index, offset)
        if catalog.flags is not None and catalog.flags[target.index] & ~3:
            flags.append("target_flagged")
        blended = catalog.flags is not None and catalog.flags[target.index] & 3
        if blended or target.neighbour_arcsec < 2 * candidate.match.radius_arcsec:
            flags.append("target_blended")
        if target.index in set(candidate.stars["cat_index"].tolist()):
            flags.append("target_is_reference_star")
        if inst_err * fit.error_scale > MAG_PER_SNR / LIMIT_SNR:
            flags.append("target_below_limit_snr")
        return {
            "mag": mag,
            "mag_err": math.hypot(stat, calib),
            "stat": stat,
            "calib": calib,
            "is_limit": False,
            "ra": ra,
            "dec": dec,
            "inst_mag": inst,
            "inst_err": inst_err,
            "snr": None,
            "flags": flags,
        }
    limit = detection_limit(catalog, LIMIT_SNR, fit.error_scale)
    if limit.extrapolated:
        flags.append("limit_extrapolated")
    calib = math.sqrt(fit.calibration_variance())
    return {
        "mag": limit.inst_mag + fit.zeropoint,
        "mag_err": -1.0,
        "stat": -1.0,
        "calib": calib,
        "is_limit": True,
        "ra": float(target_ra),
        "dec": float(target_dec),
        "inst_mag": limit.inst_mag,
        "inst_err": None,
        "snr": limit.snr,
        "flags": flags,
    }


def _result(chosen: _Candidate, answer: dict, runner_up, flags, candidates) -> CalibrationResult:
    fit = chosen.fit
    match = chosen.match
    if not fit.colour_fitted:
        flags.append("colour_term_fixed")
    if fit.n < FEW_CALIBRATORS:
        flags.append("few_calibrators")
    if math.hypot(match.offset_east_arcsec, match.offset_north_arcsec) > LARGE_OFFSET_ARCSEC:
        flags.append("large_offset")
    used = {key: values[fit.used] for key, values in chosen.stars.items()}
    stars = {
        "ref_mag": used["ref_mag"],
        "ref_err": used["ref_err"],
        "inst_mag": used["inst_mag"],
        "inst_err": used["inst_err"],
        "colour": used["colour"],
        "residual": fit.residual,
        "is_outlier": fit.inlier_probability < 0.5,
        "inlier_probability": fit.inlier_probability,
        "weight": fit.weight,
        "ra": used["ra"],
        "dec": used["dec"],
        # The star's row in the uploaded catalog (1 = first source): what the observer can look up.
        "source": used["cat_index"] + 1,
    }
    values = (
        answer["mag"],
        answer["mag_err"],
        answer["calib"],
        fit.zeropoint,
        fit.colour_term,
        fit.sigma_int,
    )
    if not all(math.isfinite(v) for v in values):
        raise CalibrationImpossible("the calibration gave a non-finite value; please report this catalog")
    return CalibrationResult(
        mag=answer["mag"],
        mag_err=answer["mag_err"],
        is_limit=answer["is_limit"],
        mag_err_stat=answer["stat"],
        calib_err=answer["calib"],
        ra=answer["ra"],
        dec=answer["dec"],
        zeropoint=fit.zeropoint,
        zeropoint_err=math.sqrt(fit.covariance[0, 0]),
        colour_term=fit.colour_term,
        colour_term_err=math.sqrt(fit.covariance[1, 1]),
        colour=chosen.colour_name if fit.colour_fitted else None,
        colour_pivot=fit.pivot,
        colour_term_fitted=fit.colour_fitted,
        covariance=fit.covariance.tolist(),
        sigma_int=fit.sigma_int,
        error_scale=fit.error_scale,
        ref_error_scale=fit.ref_error_scale,
        outlier_fraction=fit.outlier_fraction,
        scatter=fit.scatter,
        npoints=fit.n,
        filter=chosen.band,
        survey=chosen.survey,
        radius_arcsec=match.radius_arcsec,
        offset_ra_arcsec=match.offset_east_arcsec,
        offset_dec_arcsec=match.offset_north_arcsec,
        inst_mag=answer["inst_mag"],
        inst_mag_err=answer["inst_err"],
        limit_snr=answer["snr"],
        slope_diagnostic=fit.slope_diagnostic,
        runner_up=runner_up,
        flags=flags,
        candidates=[c.summary() for c in candidates],
        stars=_plain(stars),
    )
