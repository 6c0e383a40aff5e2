"""Sky geometry on unit vectors: safe across the RA wrap at 0/360 and at the poles. No Django."""

import numpy as np

ARCSEC = np.pi / 180 / 3600  # one arcsecond in radians


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Cartesian unit vectors (n, 3) of positions given in degrees."""
    ra_rad = np.radians(np.asarray(ra, dtype=float))
    dec_rad = np.radians(np.asarray(dec, dtype=float))
    cos_dec = np.cos(dec_rad)
    return np.column_stack((cos_dec * np.cos(ra_rad), cos_dec * np.sin(ra_rad), np.sin(dec_rad)))


def radec(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA in [0, 360) and Dec in degrees of (n, 3) vectors (need not be normalised)."""
    vectors = np.atleast_2d(vectors)
    x, y, z = vectors[:, 0], vectors[:, 1], vectors[:, 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def tangent_basis(ra: float, dec: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors pointing East and North at one position (defined at the poles too)."""
    ra_rad, dec_rad = np.radians(ra), np.radians(dec)
    east = np.array([-np.sin(ra_rad), np.cos(ra_rad), 0.0])
    north = np.array([-np.sin(dec_rad) * np.cos(ra_rad), -np.sin(dec_rad) * np.sin(ra_rad), np.cos(dec_rad)])
    return east, north


def chord(angle_arcsec: float) -> float:
    """Chord length on the unit sphere of an angle in arcseconds (what k-d trees measure)."""
    return 2.0 * np.sin(min(angle_arcsec * ARCSEC, np.pi) / 2.0)


def angle_arcsec(chord_length: np.ndarray) -> np.ndarray:
    """Angle in arcseconds of chord lengths on the unit sphere."""
    return 2.0 * np.arcsin(np.clip(np.asarray(chord_length) / 2.0, 0.0, 1.0)) / ARCSEC


def enclosing_cone(vectors: np.ndarray) -> tuple[float, float, float]:
    """(ra, dec, radius) in degrees of a cone holding every vector, centred on their mean direction."""
    mean = vectors.mean(axis=0)
    norm = np.linalg.norm(mean)
    if not np.isfinite(norm) or norm < 1e-9:
        # Sources spread over the whole sphere: no meaningful centre, so take everything.
        return 0.0, 0.0, 180.0
    centre = mean / norm
    cos_sep = np.clip(vectors @ centre, -1.0, 1.0)
    radius = float(np.degrees(np.arccos(cos_sep.min())))
    ra, dec = radec(centre)
    return float(ra[0]), float(dec[0]), radius
