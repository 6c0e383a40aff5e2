"""Cross-match a frame's sources with reference stars: offset removal, automatic radius. No Django.

All geometry is done on unit vectors with a k-d tree, so the RA wrap and the poles need no
special case. The catalog tree is built once per frame and serves every survey and the target.
"""

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from calibration.sky import ARCSEC, angle_arcsec, chord, enclosing_cone, radec, tangent_basis, unit_vectors

#: First, generous match: catalog WCS solutions are often off by 1-3 arcsec.
FIRST_RADIUS_ARCSEC = 5.0
#: Bounds of the automatic radius, and how many robust offset sigmas it spans: more than a
#: Gaussian would need, because reference astrometric errors differ from star to star (tails).
MIN_RADIUS_ARCSEC = 0.5
MAX_RADIUS_ARCSEC = 3.0
RADIUS_SIGMAS = 5.0
#: Offsets larger than this earn a quality flag.
LARGE_OFFSET_ARCSEC = 2.0
#: The first stage uses at most this many reference stars (evenly thinned).
FIRST_STAGE_MAX_REFERENCES = 2000
#: Fewer first-stage pairs than this give no offset estimate.
MIN_PAIRS_FOR_OFFSET = 3


@dataclass
class Match:
    """Mutual nearest-neighbour pairs between catalog sources and one reference set."""

    cat_index: np.ndarray
    ref_index: np.ndarray
    separation_arcsec: np.ndarray  # after removing the offset
    offset_east_arcsec: float  # reference minus catalog, along RA (i.e. dRA*cos(Dec))
    offset_north_arcsec: float
    radius_arcsec: float
    automatic_radius: bool
    first_pairs: int

    def __len__(self) -> int:
        return len(self.cat_index)


@dataclass
class Nearest:
    """The catalog source nearest a position, and how close the next one is."""

    index: int | None
    separation_arcsec: float
    neighbour_arcsec: float


class CatalogIndex:
    """A frame's sources on the unit sphere, indexed once for every match the frame needs."""

    def __init__(self, ra: np.ndarray, dec: np.ndarray):
        self.vectors = unit_vectors(ra, dec)
        self.tree = cKDTree(self.vectors)
        centre_ra, centre_dec, _ = enclosing_cone(self.vectors)
        self.east, self.north = tangent_basis(centre_ra, centre_dec)

    def match(self, ref_ra: np.ndarray, ref_dec: np.ndarray, radius_arcsec: float | None = None) -> Match:
        """Two-stage match: generous match, offset removal, then a tight or automatic radius."""
        ref_vectors = unit_vectors(ref_ra, ref_dec)
        # The offset and its scatter need a few thousand pairs at most: thin out dense surveys.
        sample = ref_vectors[:: -(-len(ref_vectors) // FIRST_STAGE_MAX_REFERENCES)]
        cat, ref, _ = self._mutual(sample, cKDTree(sample), FIRST_RADIUS_ARCSEC)
        first_pairs = len(cat)
        east, north = self._offsets(cat, sample[ref])
        offset = np.zeros(2)
        sigma = np.nan
        if len(cat) >= MIN_PAIRS_FOR_OFFSET:
            offset = np.array([np.median(east), np.median(north)])
            # Confusion pairs spread over the 5" disc; refine on the pairs close to the first guess.
            close = np.hypot(east - offset[0], north - offset[1]) < 1.5
            if close.sum() >= MIN_PAIRS_FOR_OFFSET:
                offset = np.array([np.median(east[close]), np.median(north[close])])
            deviations = np.concatenate((east - offset[0], north - offset[1]))
            sigma = 1.4826 * np.median(np.abs(deviations))
        automatic = radius_arcsec is None or not np.isfinite(radius_arcsec) or radius_arcsec <= 0
        if automatic:
            radius = RADIUS_SIGMAS * sigma if np.isfinite(sigma) else MAX_RADIUS_ARCSEC / 2
            radius = float(np.clip(radius, MIN_RADIUS_ARCSEC, MAX_RADIUS_ARCSEC))
        else:
            radius = float(radius_arcsec)
        # Move the references into the catalog's frame so the catalog tree can be reused.
        shifted = self._shift(ref_vectors, -offset)
        cat, ref, separation = self._mutual(shifted, cKDTree(shifted), radius)
        return Match(
            cat_index=cat,
            ref_index=ref,
            separation_arcsec=separation,
            offset_east_arcsec=float(offset[0]),
            offset_north_arcsec=float(offset[1]),
            radius_arcsec=radius,
            automatic_radius=automatic,
            first_pairs=first_pairs,
        )

    def nearest(
        self, ra: float, dec: float, offset_arcsec: tuple[float, float], radius_arcsec: float
    ) -> Nearest:
        """The source nearest a sky position (reference frame) within a radius, after the offset."""
        vector = self._shift(unit_vectors([ra], [dec]), -np.asarray(offset_arcsec, dtype=float))
        k = min(2, len(self.vectors))
        distances, indices = self.tree.query(vector, k=k)
        distances = angle_arcsec(np.atleast_1d(distances.ravel()))
        indices = np.atleast_1d(indices.ravel())
        neighbour = float(distances[1]) if k > 1 else np.inf
        if distances[0] > radius_arcsec:
            return Nearest(None, float(distances[0]), float(distances[0]))
        return Nearest(int(indices[0]), float(distances[0]), neighbour)

    def corrected_position(self, index: int, offset_arcsec: tuple[float, float]) -> tuple[float, float]:
        """Position of one source moved onto the reference frame (offset removed)."""
        moved = self._shift(self.vectors[index : index + 1], np.asarray(offset_arcsec, dtype=float))
        ra, dec = radec(moved)
        return float(ra[0]), float(dec[0])

    def _mutual(self, ref_vectors: np.ndarray, ref_tree: cKDTree, radius_arcsec: float):
        """Pairs that are each other's nearest neighbour within the radius."""
        distances, cat = self.tree.query(ref_vectors, k=1, distance_upper_bound=chord(radius_arcsec))
        found = np.isfinite(distances)
        ref = np.nonzero(found)[0]
        cat = cat[found]
        if len(cat) == 0:
            return cat.astype(np.intp), ref.astype(np.intp), np.empty(0)
        _, back = ref_tree.query(self.vectors[cat], k=1)
        mutual = back == ref
        return cat[mutual], ref[mutual], angle_arcsec(distances[found][mutual])

    def _offsets(self, cat: np.ndarray, ref_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference minus catalog position of each pair, in arcsec along East and North."""
        difference = ref_vectors - self.vectors[cat]
        return difference @ self.east / ARCSEC, difference @ self.north / ARCSEC

    def _shift(self, vectors: np.ndarray, offset_arcsec: np.ndarray) -> np.ndarray:
        """Translate vectors on the field's tangent plane by (east, north) arcsec."""
        moved = vectors + (offset_arcsec[0] * self.east + offset_arcsec[1] * self.north) * ARCSEC
        return moved / np.linalg.norm(moved, axis=1, keepdims=True)
