"""Which public archive serves each survey on demand: the TAP service, the table and its columns. No Django.

Every archive is asked the same way, an ADQL cone over TAP (pyvo), so one client, one error
path and one configurable base URL per service serve them all (tests point the URLs at a server
on 127.0.0.1). astroquery's VizieR class is not used because it always builds an ``https://``
URL from its server name, which no local test archive can answer. VizieR tables are asked for
``SELECT *`` because their column names (``g'mag``, ``RA_ICRS``) are matched case-insensitively
by the formats below, and a delimited identifier in ADQL would be case-sensitive; the Gaia
archive is asked for the columns of the project's existing Gaia formats. Row limits: the query
carries ``MAXREC`` far above any field (``ARCHIVE_MAXREC``) and an answer that reaches it is
refused as truncated rather than cached as complete.

The VizieR column names are those of the VizieR ReadMe files of each catalog; the live tests
(``GSA_NETWORK_TESTS=1 pytest -m network``) and ``tests/data/archive/capture.py`` check them
against the real services.
"""

from dataclasses import dataclass

from .refformats import FORMATS, Format


@dataclass(frozen=True)
class Archive:
    """Where one survey is fetched: ``service`` (a key of settings.ARCHIVE_URLS) and the ADQL."""

    survey: str
    service: str
    table: str
    version: str
    format: Format
    #: ADQL with {ra}, {dec} and {radius} (degrees) to fill in.
    query: str

    def adql(self, ra: float, dec: float, radius: float) -> str:
        """The ADQL cone query of this survey."""
        return self.query.format(ra=repr(float(ra)), dec=repr(float(dec)), radius=repr(float(radius)))


def _vizier_cone(table: str, ra: str, dec: str) -> str:
    return (
        f'SELECT * FROM "{table}" '  # noqa: S608 - ADQL for a TAP service, names are ours
        f"WHERE 1 = CONTAINS(POINT('ICRS', {ra}, {dec}), CIRCLE('ICRS', {{ra}}, {{dec}}, {{radius}}))"
    )


def _vizier_format(name: str, survey: str, ra: str, dec: str, bands: dict, source_id=None) -> Format:
    return Format(
        name,
        f"{survey} as served by VizieR TAP",
        surveys=(survey,),
        ra=ra,
        dec=dec,
        source_id=source_id,
        bands={band: {"mag": mag, "err": err} for band, (mag, err) in bands.items()},
    )


def _columns(fmt: Format) -> str:
    return ", ".join(dict.fromkeys(fmt.columns().values()))


_GAIA_CONE = "1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', {ra}, {dec}, {radius}))"
_GAIA = FORMATS["gaia-dr3"]
_GSPC = FORMATS["gaia-gspc"]
_GSPC_COLUMNS = ", ".join(
    f"s.{c}" for c in dict.fromkeys(_GSPC.columns().values()) if c not in ("ra", "dec", "source_id")
)

ARCHIVES: dict[str, Archive] = {
    a.survey: a
    for a in (
        Archive(
            "APASS",
            "vizier",
            "II/336/apass9",
            "DR9 (VizieR II/336)",
            _vizier_format(
                "vizier-apass9",
                "APASS",
                "RAJ2000",
                "DEJ2000",
                {
                    "B": ("Bmag", "e_Bmag"),
                    "V": ("Vmag", "e_Vmag"),
                    "g": ("g'mag", "e_g'mag"),
                    "r": ("r'mag", "e_r'mag"),
                    "i": ("i'mag", "e_i'mag"),
                },
            ),
            _vizier_cone("II/336/apass9", "RAJ2000", "DEJ2000"),
        ),
        Archive(
            "PS1",
            "vizier",
            "II/349/ps1",
            "DR1 (VizieR II/349)",
            _vizier_format(
                "vizier-ps1",
                "PS1",
                "RAJ2000",
                "DEJ2000",
                {b: (f"{b}mag", f"e_{b}mag") for b in "grizy"},
                source_id="objID",
            ),
            _vizier_cone("II/349/ps1", "RAJ2000", "DEJ2000"),
        ),
        Archive(
            "SDSS",
            "vizier",
            "V/154/sdss16",
            "DR16 (VizieR V/154)",
            _vizier_format(
                "vizier-sdss16",
                "SDSS",
                "RA_ICRS",
                "DE_ICRS",
                {b: (f"{b}pmag", f"e_{b}pmag") for b in "ugriz"},
                source_id="objID",
            ),
            _vizier_cone("V/154/sdss16", "RA_ICRS", "DE_ICRS"),
        ),
        Archive(
            "RefCat2",
            "vizier",
            "J/ApJ/867/105/refcat2",
            "2 (VizieR J/ApJ/867/105)",
            _vizier_format(
                "vizier-refcat2",
                "RefCat2",
                "RA_ICRS",
                "DE_ICRS",
                {b: (f"{b}mag", f"e_{b}mag") for b in ("g", "r", "i", "z", "J", "H", "K")},
            ),
            _vizier_cone("J/ApJ/867/105/refcat2", "RA_ICRS", "DE_ICRS"),
        ),
        Archive(
            "2MASS",
            "vizier",
            "II/246/out",
            "PSC (VizieR II/246)",
            _vizier_format(
                "vizier-2mass",
                "2MASS",
                "RAJ2000",
                "DEJ2000",
                {b: (f"{b}mag", f"e_{b}mag") for b in ("J", "H", "K")},
            ),
            _vizier_cone("II/246/out", "RAJ2000", "DEJ2000"),
        ),
        Archive(
            "GaiaDR3",
            "gaia",
            "gaiadr3.gaia_source",
            "DR3",
            _GAIA,
            f"SELECT {_columns(_GAIA)} FROM gaiadr3.gaia_source AS g WHERE {_GAIA_CONE}",  # noqa: S608
        ),
        Archive(
            "GaiaSP",
            "gaia",
            "gaiadr3.synthetic_photometry_gspc",
            "DR3",
            _GSPC,
            # The archive's synthetic photometry holds no position: it is joined with gaia_source.
            # VizieR republishes the same photometry as I/360/syntphot (with positions); the
            # archive's table is asked because its columns (fluxes with their errors, flags) are
            # those of the gaia-gspc format that bulk loads read, so one column map serves both.
            f"SELECT g.source_id, g.ra, g.dec, {_GSPC_COLUMNS} "  # noqa: S608 - ADQL, names are ours
            "FROM gaiadr3.synthetic_photometry_gspc AS s "
            f"JOIN gaiadr3.gaia_source AS g ON g.source_id = s.source_id WHERE {_GAIA_CONE}",
        ),
    )
}
