"""Ingest of reference-survey files: every format, malformed files, --replace and --append."""

import gzip
import threading
from io import StringIO

import numpy as np
import pytest
from astropy.table import Table
from django.core.management import CommandError, call_command
from django.db import connection, connections

from calibration.ingest import ingest_refcat
from calibration.models import ReferenceCatalog, ReferenceStar
from calibration.references import cone
from calibration.refformats import FORMATS, ReferenceFileReader, detect_format
from gsafollowup.errors import BadInput

from .conftest import DATA

SAMPLES = DATA / "refcat"
APASS = DATA / "apass-dr10-grb210605a-field.csv"
TWOMASS_COLUMNS = "ra=RAJ2000,dec=DEJ2000,J=Jmag,J_err=e_Jmag,H=Hmag,H_err=e_Hmag,K=Kmag,K_err=e_Kmag"


def stars_of(survey):
    return ReferenceStar.objects.filter(catalog__survey=survey)


def one_set(survey, ra, dec, radius=1.0):
    (found,) = cone(ra, dec, radius, surveys=[survey])
    return found


def row_near(found, ra, dec):
    """Index of the star of a ReferenceSet nearest a position."""
    return int(np.argmin(np.hypot((found.ra - ra) * np.cos(np.radians(dec)), found.dec - dec)))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (APASS, "apass-dr10"),
        (SAMPLES / "gaia-dr3-gaia_source.csv", "gaia-dr3"),
        (SAMPLES / "GaiaSource_sample.csv.gz", "gaia-dr3"),
        (SAMPLES / "gaia-dr3-gspc.csv", "gaia-gspc"),
        (SAMPLES / "ps1-dr2-mean.csv", "ps1"),
        (SAMPLES / "sdss-dr17-photoobj.csv", "sdss"),
        (SAMPLES / "refcat2-mast.csv", "refcat2"),
        (SAMPLES / "refcat2-022-49.rc2", "refcat2"),
    ],
)
def test_format_is_detected_from_the_header(path, expected):
    reader = ReferenceFileReader(path)
    try:
        assert reader.format.name == expected
    finally:
        reader.close()


def test_ambiguous_header_asks_for_a_format():
    with pytest.raises(BadInput, match="several formats"):
        detect_format(
            ["ra", "dec", "phot_g_mean_mag", "phot_g_mean_flux_over_error"]
            + ["v_jkc_mag", "v_jkc_flux", "v_jkc_flux_error", "v_jkc_flag"]
        )


def test_real_apass_extract(db):
    result = ingest_refcat("APASS", APASS)
    assert (result.stars, result.version, result.bad_rows) == (2865, "DR10", [])
    assert result.bands == ["u", "g", "r", "i", "z", "y", "B", "V"]
    # First data line: 22.559192,...,V 16.512 0.065, B 17.086 0.089, SU NA, SG 16.822 0.059, ...
    star = stars_of("APASS").get(ra=22.559192)
    assert star.dec == -48.605259 and star.source_id is None
    assert star.johnson_v_mag == pytest.approx(16.512, abs=1e-5)
    assert star.johnson_b_err == pytest.approx(0.089, abs=1e-6)
    assert star.u_mag is None and star.u_err is None
    assert star.g_mag == pytest.approx(16.822, abs=1e-5)
    assert star.gaia_g_mag is None  # APASS has no Gaia band: the column stays NULL
    found = one_set("APASS", 22.559192, -48.605259, 1 / 3600)
    assert len(found) == 1 and np.isnan(found.mag["u"][0]) and found.source_id is None


def test_gaia_archive_csv(db):
    result = ingest_refcat("GaiaDR3", SAMPLES / "gaia-dr3-gaia_source.csv")
    assert (result.stars, result.bands) == (8, ["G", "BP", "RP"])
    found = one_set("GaiaDR3", 22.56, -48.75)
    k = row_near(found, 22.559180285415, -48.605265887932)
    assert found.source_id[k] == 4929728621612329585
    assert found.mag["G"][k] == pytest.approx(16.330021, abs=1e-5)
    # sigma = 1.0857 / (flux over error), with the G zero-point error in quadrature.
    assert found.err["G"][k] == pytest.approx(np.hypot(1.0857362 / 1175.037, 0.0027553202), rel=1e-5)
    k = row_near(found, 22.564979291182, -48.600453876970)
    assert np.isnan(found.mag["BP"][k]) and np.isnan(found.err["BP"][k]) and np.isfinite(found.mag["RP"][k])


def test_gaia_bulk_file_gzipped_with_comments_and_null(db):
    result = ingest_refcat("GaiaDR3", SAMPLES / "GaiaSource_sample.csv.gz")
    assert result.stars == 5
    assert stars_of("GaiaDR3").filter(gaia_bp_mag__isnull=True).count() == 1


def test_gaia_synthetic_photometry(db):
    result = ingest_refcat("GaiaSP", SAMPLES / "gaia-dr3-gspc.csv")
    assert result.stars == 6
    assert result.bands == ["u", "g", "r", "i", "z", "U", "B", "V", "R", "I"]
    assert stars_of("GaiaSP").filter(johnson_u_mag__isnull=True).count() == 2  # empty: F/sigma < 30
    assert stars_of("GaiaSP").filter(u_mag__isnull=True).count() == 1  # u_sdss_flag = 0
    star = stars_of("GaiaSP").get(source_id=4929728622508487024)
    assert star.johnson_v_mag == pytest.approx(16.533009, abs=1e-5)
    assert star.johnson_v_err == pytest.approx(1.0857362 * 8.337217e-20 / 8.772004e-18, rel=1e-5)


def test_pan_starrs_mast_csv(db):
    result = ingest_refcat("PS1", SAMPLES / "ps1-dr2-mean.csv")
    assert (result.stars, result.bands) == (6, ["g", "r", "i", "z", "y"])
    assert stars_of("PS1").filter(y_mag__isnull=True, y_err__isnull=True).count() == 1  # -999
    star = stars_of("PS1").get(source_id=1440402959083423585)
    assert (star.g_mag, star.g_err) == (pytest.approx(14.084503, abs=1e-5), pytest.approx(0.002216, abs=1e-7))


def test_sdss_skyserver_csv(db):
    result = ingest_refcat("SDSS", SAMPLES / "sdss-dr17-photoobj.csv", version="DR17")
    assert (result.stars, result.version) == (6, "DR17")
    assert stars_of("SDSS").filter(u_mag__isnull=True).count() == 1  # -9999
    assert stars_of("SDSS").get(source_id=1237661950259109195).r_mag == pytest.approx(18.35949, abs=1e-5)


def test_refcat2_with_header_and_original_headerless_agree(db):
    ingest_refcat("RefCat2", SAMPLES / "refcat2-mast.csv")
    with_header = one_set("RefCat2", 22.56, -48.75)
    result = ingest_refcat("RefCat2", SAMPLES / "refcat2-022-49.rc2", replace=True)
    assert (result.stars, result.replaced, result.bands) == (6, 6, ["g", "r", "i", "z", "J", "H", "K"])
    original = one_set("RefCat2", 22.56, -48.75)
    assert with_header.source_id is not None and original.source_id is None
    order_h, order_o = np.argsort(with_header.ra), np.argsort(original.ra)
    assert np.allclose(with_header.ra[order_h], original.ra[order_o], atol=1e-8)
    for band in result.bands:
        assert np.allclose(
            with_header.mag[band][order_h], original.mag[band][order_o], atol=1e-5, equal_nan=True
        )
    assert np.isnan(original.mag["z"]).sum() == 1 and np.isnan(original.mag["J"]).sum() == 1  # 0 = no data


@pytest.mark.filterwarnings("ignore::astropy.io.votable.exceptions.W03")
def test_generic_csv_fits_and_votable(db, tmp_path):
    source = SAMPLES / "vizier-2mass-psc.csv"
    result = ingest_refcat("2MASS", source, columns=TWOMASS_COLUMNS)
    assert (result.format, result.stars, result.bands) == ("generic", 6, ["J", "H", "K"])
    assert stars_of("2MASS").filter(k_mag__isnull=True).count() == 1
    table = Table.read(source, format="ascii.csv")
    for name, kind in (("stars.fits", "fits"), ("stars.xml", "votable")):
        table.write(tmp_path / name, format=kind)
        result = ingest_refcat("2MASS", tmp_path / name, columns=TWOMASS_COLUMNS, replace=True)
        assert (result.stars, result.replaced) == (6, 6)
        assert stars_of("2MASS").filter(k_mag__isnull=True).count() == 1
        assert stars_of("2MASS").get(ra=22.559612).j_mag == pytest.approx(12.231, abs=1e-5)


def test_generic_refuses_bands_the_survey_lacks_and_needs_columns(db):
    with pytest.raises(BadInput, match="2MASS has no band V"):
        ingest_refcat("2MASS", SAMPLES / "vizier-2mass-psc.csv", columns="ra=RAJ2000,dec=DEJ2000,V=Jmag")
    with pytest.raises(BadInput, match="needs --columns"):
        ingest_refcat("2MASS", SAMPLES / "vizier-2mass-psc.csv", format_name="generic")
    with pytest.raises(BadInput, match="must map dec"):
        ingest_refcat("2MASS", SAMPLES / "vizier-2mass-psc.csv", columns="ra=RAJ2000,J=Jmag")
    with pytest.raises(BadInput, match="not ra, dec"):
        ingest_refcat("2MASS", SAMPLES / "vizier-2mass-psc.csv", columns="ra=RAJ2000,dec=DEJ2000,Jx=Jmag")
    assert not ReferenceCatalog.objects.exists()


def test_format_must_match_the_survey(db):
    with pytest.raises(BadInput, match="holds APASS, not SDSS"):
        ingest_refcat("SDSS", APASS)
    with pytest.raises(BadInput, match="Unknown survey"):
        ingest_refcat("USNO", APASS)
    assert not ReferenceCatalog.objects.exists()


# -- malformed files: a clear error, nothing loaded ----------------------------------------------------


def write(tmp_path, text, name="file.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def apass_lines():
    return APASS.read_text().splitlines(keepends=True)


def refused(survey, path, match, **options):
    with pytest.raises(BadInput, match=match):
        ingest_refcat(survey, path, **options)
    assert not ReferenceCatalog.objects.exists() and not ReferenceStar.objects.exists()


def test_empty_and_header_only_files(db, tmp_path):
    refused("APASS", write(tmp_path, ""), "is empty")
    refused("APASS", write(tmp_path, "\n\n# nothing\n"), "is empty")
    refused("APASS", write(tmp_path, apass_lines()[0]), "holds no stars")


def test_missing_columns(db, tmp_path):
    lines = [
        ",".join(line.rstrip("\n").split(",")[:2] + line.rstrip("\n").split(",")[3:]) + "\n"
        for line in apass_lines()
    ]
    refused(
        "APASS",
        write(tmp_path, "".join(lines)),
        r"lacks the position column\(s\) decdeg",
        format_name="apass-dr10",
    )
    text = APASS.read_text().replace("Verr", "Vsigma", 1)
    refused("APASS", write(tmp_path, text), "has Johnson_V \\(V\\) but lacks Verr")
    refused("GaiaDR3", write(tmp_path, "source_id,ra,dec,parallax\n1,2,3,4\n"), "none of the band columns",
            format_name="gaia-dr3")  # fmt: skip
    refused("GaiaDR3", write(tmp_path, "a,b,c\n1,2,3\n"), "Cannot tell the format")


def test_wrong_delimiter(db, tmp_path):
    refused("APASS", write(tmp_path, APASS.read_text().replace(",", ";")), "separated by semicolons")
    refused(
        "APASS",
        write(tmp_path, APASS.read_text().replace(",", "\t")),
        "separated by tabs",
        format_name="apass-dr10",
    )


def test_a_few_bad_rows_are_skipped_and_reported(db, tmp_path):
    lines = apass_lines()
    lines[5] = lines[5].replace("16.", "1x.", 1)  # line 6
    lines[100] = ",".join(lines[100].split(",")[:20]) + "\n"  # line 101: too few fields
    lines[200] = "NA," + lines[200].split(",", 1)[1]  # line 201: no RA
    lines.insert(300, "\n")  # a blank line is not a star, nor an error
    result = ingest_refcat("APASS", write(tmp_path, "".join(lines)))
    assert result.stars == 2865 - 3
    assert [line for line, _ in result.bad_rows] == [6, 101, 201]
    assert "is not a number: '1x." in result.bad_rows[0][1]
    assert "20 fields where the header has 28" in result.bad_rows[1][1]
    assert "no valid position" in result.bad_rows[2][1]


def test_bad_rows_beyond_the_threshold_load_nothing(db, tmp_path):
    lines = apass_lines()
    for k in range(10, 2000, 100):
        lines[k] = "oops" + lines[k]
    path = write(tmp_path, "".join(lines))
    refused("APASS", path, r"More than 10 malformed rows; nothing was loaded. First ones: line 11: radeg")
    refused("APASS", path, "More than 0 malformed rows", max_bad_rows=0)
    assert ingest_refcat("APASS", path, max_bad_rows=100).stars == 2865 - 20


def test_bad_numbers_everywhere(db, tmp_path):
    header = "source_id,ra,dec,phot_g_mean_mag,phot_g_mean_flux_over_error\n"
    bad_magnitudes = header + "".join(f"{k},1.0,2.0,abc,3\n" for k in range(30))
    refused("GaiaDR3", write(tmp_path, bad_magnitudes), "line 2: phot_g_mean_mag is not a number")
    text_ids = header + "".join(f"G{k},1.0,2.0,15,3\n" for k in range(30))
    refused("GaiaDR3", write(tmp_path, text_ids), "source_id is not an integer")


def test_binary_and_non_utf8_files(db, tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"radeg,decdeg\n\xff\xfe\x00\x01" * 10)
    refused("APASS", path, "not UTF-8", format_name="apass-dr10")
    path = tmp_path / "table.fits"
    Table({"a": [1.0]}).write(path)
    refused("APASS", path, "is a FITS file: use --format generic")


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
def test_damaged_fits_and_votable(db, tmp_path):
    fits_file = tmp_path / "broken.fits"
    fits_file.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    refused("2MASS", fits_file, "cannot be read as FITS", columns=TWOMASS_COLUMNS)
    votable = tmp_path / "broken.xml"
    votable.write_text('<?xml version="1.0"?>\n<VOTABLE><RESOURCE><TABLE>')
    refused("2MASS", votable, "cannot be read as VOTABLE", columns=TWOMASS_COLUMNS)


def test_truncated_gzip(db, tmp_path):
    data = gzip.compress(APASS.read_bytes())
    path = tmp_path / "apass.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    refused("APASS", path, "truncated or damaged")


def test_large_files_are_read_in_chunks(db, tmp_path, monkeypatch):
    monkeypatch.setattr("calibration.refformats.CHUNK_BYTES", 4096)
    lines = apass_lines()
    lines[1500] = "bad" + lines[1500]
    result = ingest_refcat("APASS", write(tmp_path, "".join(lines)))
    assert result.stars == 2864 and [n for n, _ in result.bad_rows] == [1501]


# -- replace and append ----------------------------------------------------------------------------


def test_second_ingest_needs_replace_or_append(db):
    ingest_refcat("APASS", APASS)
    refused_again = pytest.raises(BadInput, match="loaded already")
    with refused_again:
        ingest_refcat("APASS", APASS)
    with pytest.raises(BadInput, match="not both"):
        ingest_refcat("APASS", APASS, replace=True, append=True)
    assert stars_of("APASS").count() == 2865


def test_replace_swaps_the_whole_catalog(db, tmp_path):
    ingest_refcat("APASS", APASS)
    old_ids = set(stars_of("APASS").values_list("pk", flat=True))
    half = write(tmp_path, "".join(apass_lines()[:1001]))
    result = ingest_refcat("APASS", half, replace=True)
    assert (result.stars, result.replaced) == (1000, 2865)
    assert ReferenceStar.objects.count() == 1000
    assert not old_ids & set(ReferenceStar.objects.values_list("pk", flat=True))
    catalog = ReferenceCatalog.objects.get()
    assert catalog.stars == 1000 and [f["name"] for f in catalog.files] == ["file.csv"]


def test_failed_replace_keeps_the_old_catalog_whole(db, tmp_path):
    ingest_refcat("APASS", APASS)
    lines = apass_lines()
    lines[-1] = lines[-1].replace(",", ";")  # the last line is bad: it fails after every other row
    broken = write(tmp_path, "".join(lines))
    with pytest.raises(BadInput, match="line 2866"):
        ingest_refcat("APASS", broken, replace=True, max_bad_rows=0)
    catalog = ReferenceCatalog.objects.get()
    assert catalog.stars == stars_of("APASS").count() == 2865 and len(catalog.files) == 1


def test_append_adds_a_file_to_the_catalog(db):
    ingest_refcat("GaiaDR3", SAMPLES / "gaia-dr3-gaia_source.csv")
    ingest_refcat("GaiaDR3", SAMPLES / "GaiaSource_sample.csv.gz", append=True)
    catalog = ReferenceCatalog.objects.get()
    assert catalog.stars == 13 == stars_of("GaiaDR3").count()
    assert [f["format"] for f in catalog.files] == ["gaia-dr3", "gaia-dr3"]
    with pytest.raises(BadInput, match="loaded as version 'DR3', not 'EDR3'"):
        ingest_refcat("GaiaDR3", SAMPLES / "gaia-dr3-gaia_source.csv", append=True, version="EDR3")


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_readers_see_old_or_new_never_a_mixture(tmp_path, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs a second connection reading while the first writes (PostgreSQL)")
    # Small chunks, each written at once: the reader looks between writes.
    monkeypatch.setattr("calibration.refformats.CHUNK_BYTES", 16384)
    monkeypatch.setattr("calibration.references.BATCH_BYTES", 1)
    ingest_refcat("APASS", APASS)
    old = stars_of("APASS").count()
    seen = []

    def look():
        # Another thread has its own connection: it sees only committed rows.
        try:
            seen.append(sum(len(s) for s in cone(24.2, -48.7, 3.0)))
        finally:
            connections.close_all()

    def progress(position, size):
        reader = threading.Thread(target=look)
        reader.start()
        reader.join()

    half = tmp_path / "half.csv"
    half.write_text("".join(apass_lines()[:1001]))
    ingest_refcat("APASS", half, replace=True, progress=progress)
    assert len(seen) > 3 and set(seen) == {old}
    look()
    assert seen[-1] == 1000


# -- the command -----------------------------------------------------------------------------------


def test_command_loads_and_reports(db, tmp_path):
    out, err = StringIO(), StringIO()
    lines = apass_lines()
    lines[9] = "x" + lines[9]
    call_command("ingest_refcat", "APASS", str(write(tmp_path, "".join(lines))), stdout=out, stderr=err)
    assert "APASS DR10: 2864 stars loaded from apass-dr10 (u g r i z y B V)" in out.getvalue()
    assert "Skipped line 10: radeg is not a number" in err.getvalue()
    call_command("ingest_refcat", "APASS", str(APASS), "--replace", stdout=out, stderr=err)
    assert "2865 stars loaded from apass-dr10 (u g r i z y B V), replacing 2864" in out.getvalue()
    call_command(
        "ingest_refcat", "2MASS", str(SAMPLES / "vizier-2mass-psc.csv"), "--format", "generic",
        "--columns", TWOMASS_COLUMNS, "--catalog-version", "All-Sky", stdout=out, stderr=err,
    )  # fmt: skip
    assert "2MASS All-Sky: 6 stars loaded from generic (J H K)" in out.getvalue()


def test_command_turns_bad_input_into_an_error(db, tmp_path):
    with pytest.raises(CommandError, match="is empty"):
        call_command("ingest_refcat", "APASS", str(write(tmp_path, "")), stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="not a file"):
        call_command(
            "ingest_refcat", "APASS", str(tmp_path / "nowhere.csv"), stdout=StringIO(), stderr=StringIO()
        )


def test_every_named_format_has_a_sample():
    assert set(FORMATS) == {"apass-dr10", "gaia-dr3", "gaia-gspc", "ps1", "sdss", "refcat2"}
