"""Reference surveys, their bands, and the arrays that carry their stars. No Django here.

Band names are the project's standard set; every survey maps its own column names to them.
"""

from dataclasses import dataclass, field

import numpy as np

#: The standard band names, in the order used by storage and output.
BANDS = ("u", "g", "r", "i", "z", "y", "U", "B", "V", "R", "I", "G", "BP", "RP", "J", "H", "K")


@dataclass(frozen=True)
class Survey:
    """A reference survey: its name as observers write it (``forceFilter=APASS/V``) and its bands."""

    name: str
    bands: tuple[str, ...]
    description: str


SURVEYS = {
    s.name: s
    for s in (
        Survey("APASS", ("B", "V", "u", "g", "r", "i", "z", "y"), "AAVSO Photometric All-Sky Survey"),
        Survey("SDSS", ("u", "g", "r", "i", "z"), "Sloan Digital Sky Survey PSF magnitudes"),
        Survey("PS1", ("g", "r", "i", "z", "y"), "Pan-STARRS1 3pi mean PSF magnitudes"),
        Survey("GaiaDR3", ("G", "BP", "RP"), "Gaia DR3 mean photometry"),
        Survey(
            "GaiaSP",
            ("U", "B", "V", "R", "I", "u", "g", "r", "i", "z"),
            "Gaia DR3 synthetic photometry (GSPC): Johnson-Kron-Cousins and SDSS",
        ),
        Survey("RefCat2", ("g", "r", "i", "z", "J", "H", "K"), "ATLAS All-Sky Stellar Reference Catalog"),
        Survey("2MASS", ("J", "H", "K"), "Two Micron All Sky Survey"),
    )
}

#: The colour used for the colour term of each band: (bluer band, redder band).
COLOUR_OF_BAND = {
    "u": ("u", "g"),
    "g": ("g", "r"),
    "r": ("r", "i"),
    "i": ("r", "i"),
    "z": ("i", "z"),
    "y": ("z", "y"),
    "U": ("U", "B"),
    "B": ("B", "V"),
    "V": ("B", "V"),
    "R": ("V", "R"),
    "I": ("R", "I"),
    "G": ("BP", "RP"),
    "BP": ("BP", "RP"),
    "RP": ("BP", "RP"),
    "J": ("J", "H"),
    "H": ("J", "H"),
    "K": ("H", "K"),
}


@dataclass
class ReferenceSet:
    """Stars of one survey around a position, as plain arrays (NaN where a band is missing)."""

    survey: str
    ra: np.ndarray
    dec: np.ndarray
    mag: dict[str, np.ndarray] = field(default_factory=dict)
    err: dict[str, np.ndarray] = field(default_factory=dict)
    source_id: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ra)

    def bands(self) -> list[str]:
        """Bands with at least one finite magnitude, in standard order."""
        return [b for b in BANDS if b in self.mag and np.isfinite(self.mag[b]).any()]
