"""Regenerate the files of tests/data/bad/ that are derived from real catalogs (run from the repo root).

    .venv/bin/python tests/data/make_bad_corpus.py

Each file is deterministic; the older hand-written files of the corpus are left alone. The
200 MB upload and the single-layer gzip bomb are not files here: the tests make them in a
temporary directory (tests/test_bad_input.py), so the repository stays small.
"""

import gzip
import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

DATA = Path(__file__).parent
BAD = DATA / "bad"
DECAM = DATA / "decam-grb210605a-g-night1.cat"
LDAC = DATA / "t90-osn-hd204827-R.ldac.fits"
HEADER = "#   1 ALPHA_J2000\n#   2 DELTA_J2000\n#   3 MAG_AUTO\n#   4 MAGERR_AUTO\n"


def decam_lines(n_rows: int) -> tuple[list[str], list[str]]:
    """The real DECam catalog's header lines and its first n_rows rows."""
    lines = DECAM.read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    rows = [line for line in lines if not line.startswith("#")][:n_rows]
    return header, rows


def decam_text(n_rows: int) -> str:
    header, rows = decam_lines(n_rows)
    return "\n".join(header + rows) + "\n"


def simple_rows(n: int, fmt=None) -> str:
    """n rows of a small field near the DECam frame (RA 24.1, Dec -48.7)."""
    fmt = fmt or (lambda i: f"{24.1 + i * 1e-3:.6f} {-48.7 + i * 1e-3:.6f} {15 + i * 0.1:.3f} 0.010")
    return "".join(fmt(i) + "\n" for i in range(n))


def decam_table(n_rows: int) -> Table:
    """The first rows of the real DECam catalog as an astropy Table (for FITS variants)."""
    return Table.read(decam_text(n_rows), format="ascii.sextractor")


def fits_of(*hdus) -> bytes:
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(buffer)
    return buffer.getvalue()


def png_image() -> bytes:
    """A real 16x16 greyscale PNG, written by hand with zlib (no imaging library needed)."""
    width = height = 16
    raw = b"".join(b"\x00" + bytes((x * 16 + y) % 256 for x in range(width)) for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def fits_bomb(side: int = 65536) -> bytes:
    """A tile-compressed FITS image of side x side int32 zeros (16 GiB) in 8640 bytes.

    astropy compresses a small all-zero tile with HCOMPRESS; that stream only records the
    tile's size, so writing a larger size into it (and into the header) gives a valid file
    that a reader decompressing images would expand to side**2 * 4 bytes.
    """
    small = 1024
    hdu = fits.CompImageHDU(
        np.zeros((small, small), dtype=np.int32), compression_type="HCOMPRESS_1", tile_shape=(small, small)
    )
    raw = fits_of(hdu)
    before = b"\xdd\x99" + small.to_bytes(4, "big") * 2
    assert raw.count(before) == 1
    raw = raw.replace(before, b"\xdd\x99" + side.to_bytes(4, "big") * 2)
    with fits.open(io.BytesIO(raw), disable_image_compression=True) as hdul:
        for key in ("ZNAXIS1", "ZNAXIS2", "ZTILE1", "ZTILE2"):
            hdul[1].header[key] = side
        out = io.BytesIO()
        hdul.writeto(out)
    return out.getvalue()


def nested_gzip_bomb() -> bytes:
    """1 GiB of blanks gzipped twice: about 10 kB, 1 MB after one gunzip, 1 GiB after two."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * 2**20
    middle = b"".join(inner.compress(block) for _ in range(1024)) + inner.flush()
    return gzip.compress(middle, mtime=0)


def files() -> dict[str, bytes]:
    header, rows = decam_lines(60)
    text60 = decam_text(60)
    full = text60.encode()
    out = {}
    # Truncated uploads: cut in a row, in the header, and a truncated gzip.
    out["truncated-in-a-row.cat"] = full[: full.rindex(b"\n", 0, len(full) - 1) + 40]
    out["truncated-in-the-header.cat"] = full[: full.index(b"#   7")]
    out["truncated-gzip.cat.gz"] = gzip.compress(full, mtime=0)[:900]
    out["fits-ldac-cut-in-half.fits"] = LDAC.read_bytes()[: len(LDAC.read_bytes()) // 2]
    out["fits-garbage-after-simple.fits"] = b"SIMPLE  =                    T" + bytes(range(256)) * 11
    # Images and other files instead of a catalog.
    out["png-image.png"] = png_image()
    out["png-image-named-cat.cat"] = png_image()
    out["jpeg-header.jpg"] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(
        200
    )
    out["pdf-document.pdf"] = (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr(zipfile.ZipInfo("night1.cat", (2021, 6, 5, 0, 0, 0)), text60)
    out["zip-archive.zip"] = zipped.getvalue()
    out["votable.xml"] = (
        b'<?xml version="1.0"?>\n<VOTABLE version="1.4"><RESOURCE><TABLE><FIELD name="ra" datatype="double"/>'
        b"<DATA><TABLEDATA><TR><TD>24.1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>\n"
    )
    out["csv-with-header.csv"] = ("ra,dec,mag,magerr\n" + simple_rows(5).replace(" ", ",")).encode()
    out["utf16-catalog.cat"] = text60.encode("utf-16")
    # Wrong or missing columns.
    out["wrong-column-names.cat"] = ("#   1 RA\n#   2 DEC\n#   3 MAG\n#   4 ERR\n" + simple_rows(5)).encode()
    out["missing-positions.cat"] = (
        "#   1 X_IMAGE\n#   2 Y_IMAGE\n#   3 MAG_AUTO\n#   4 MAGERR_AUTO\n" + simple_rows(5)
    ).encode()
    out["non-numeric-magnitudes.cat"] = (
        HEADER + simple_rows(5, lambda i: f"24.1{i} -48.7{i} bright 0.01")
    ).encode()
    out["duplicate-column-names.cat"] = (
        "#   1 ALPHA_J2000\n#   2 DELTA_J2000\n#   3 MAG_AUTO\n#   4 MAG_AUTO\n#   5 MAGERR_AUTO\n"
        + simple_rows(5, lambda i: f"24.1{i} -48.7{i} 15.{i} 16.{i} 0.01")
    ).encode()
    dup = [
        fits.Column(name=n, format="D", array=np.arange(5.0) * 1e-3 + v)
        for n, v in (
            ("ALPHA_J2000", 24.1),
            ("DELTA_J2000", -48.7),
            ("MAG_AUTO", 15.0),
            ("MAG_AUTX", 16.0),
            ("MAGERR_AUTO", 0.01),
        )
    ]
    # astropy refuses to write two columns of one name: rename the second in the written header.
    raw = fits_of(fits.BinTableHDU.from_columns(dup))
    out["fits-duplicate-column-names.fits"] = raw.replace(b"'MAG_AUTX'", b"'MAG_AUTO'")
    out["ra-unit-radians.cat"] = (
        "#   1 ALPHA_J2000 Right ascension [rad]\n#   2 DELTA_J2000 [rad]\n"
        "#   3 MAG_AUTO\n#   4 MAGERR_AUTO\n" + simple_rows(5, lambda i: f"0.42{i} -0.85{i} 15.0 0.01")
    ).encode()
    out["dec-sexagesimal.cat"] = (
        HEADER + simple_rows(5, lambda i: f"24.1{i} -48:42:1{i}.5 15.0 0.01")
    ).encode()
    strings = [fits.Column(name="ALPHA_J2000", format="12A", array=[f"01:36:2{i}.00" for i in range(5)])]
    strings += [
        fits.Column(name=n, format="D", array=np.full(5, v))
        for n, v in (("DELTA_J2000", -48.7), ("MAG_AUTO", 15.0), ("MAGERR_AUTO", 0.01))
    ]
    out["fits-sexagesimal-strings.fits"] = fits_of(fits.BinTableHDU.from_columns(strings))
    hours = decam_table(60)
    hours["X_WORLD"].unit = None
    hours_hdu = fits.table_to_hdu(hours)
    hours_hdu.header[f"TUNIT{hours.colnames.index('X_WORLD') + 1}"] = "h"
    out["fits-ra-unit-hours.fits"] = fits_of(hours_hdu)
    # NaN / inf everywhere, absurd and negative values.
    out["inf-everywhere.cat"] = (HEADER + simple_rows(5, lambda i: "inf -inf inf inf")).encode()
    out["nan-magnitudes.cat"] = (HEADER + simple_rows(5, lambda i: f"24.1{i} -48.7{i} nan nan")).encode()
    out["negative-magnitude-errors.cat"] = (
        HEADER + simple_rows(5, lambda i: f"24.1{i} -48.7{i} 15.{i} -0.0{i + 1}")
    ).encode()
    out["absurd-magnitudes.cat"] = (HEADER + simple_rows(5, lambda i: f"24.1{i} -48.7{i} 1e30 1e30")).encode()
    nan_table = decam_table(20)
    for name in nan_table.colnames:
        nan_table[name] = np.full(len(nan_table), np.nan)
    out["fits-nan-everywhere.fits"] = fits_of(fits.table_to_hdu(nan_table))
    # Too few rows to calibrate.
    out["one-row.cat"] = decam_text(1).encode()
    out["fits-one-row.fits"] = fits_of(fits.table_to_hdu(decam_table(1)))
    # Decompression bombs.
    out["fits-decompression-bomb-16GiB.fits"] = fits_bomb()
    out["gzip-twice-1GiB.cat.gz"] = nested_gzip_bomb()
    # Other encodings than UTF-8 and stray bytes.
    out["windows-1252-unit.cat"] = (
        "#   1 ALPHA_J2000  Right ascension  [deg]\n#   2 DELTA_J2000  Declination  [deg]\n"
        "#   3 MAG_AUTO  Magnitude  [mag]\n#   4 MAGERR_AUTO  Error  [mag]\n# seeing 1.2\u201d at 15\u00b0C\n"
        + simple_rows(5)
    ).encode("cp1252")
    out["nul-byte-in-a-row.cat"] = (HEADER + simple_rows(5)).encode().replace(b"15.100", b"15.1\x000")
    return out


def main() -> None:
    for name, content in files().items():
        (BAD / name).write_bytes(content)
        print(f"{len(content):>9} {name}")


if __name__ == "__main__":
    main()
