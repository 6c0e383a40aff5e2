"""Reference-catalog benchmark: ingest rate and 15' cone latency on scratch SQLite and PostgreSQL.

    python -m calibration.benchmarks.refcat [--sizes 1e6,1e7] [--db sqlite|postgres|both] [--cones 200]

For each size N it writes two synthetic files in real survey formats, in random order (real
survey files come roughly sorted by position, so this is the harder case):

* sparse, APASS DR10 CSV: 100 stars/deg^2 over a band around the equator, half of N at most
  (the band is the whole sky from N = 8.3 M up);
* dense, Gaia DR3 gaia_source CSV: 50,000 stars/deg^2 in a disc around (270, -30), the rest.

Each (database, size) gets a scratch database, a SQLite file in a temporary folder or a
database on a throw-away PostgreSQL server started like the test suite's (initdb in a
temporary folder, 127.0.0.1, fsync off), and a child process whose DATABASE_URL points at it
loads both files through the real ingest path and times 15' cones at random centres inside
each region, rows-to-arrays and exact filter included. The developer's database is never
opened. The figures are printed as a table; nothing is asserted.
"""

import argparse
import json
import math
import os
import platform
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RADIUS_DEG = 0.25
SPARSE_DENSITY = 100.0
DENSE_DENSITY = 50_000.0
DENSE_CENTRE = (270.0, -30.0)
SKY_DEG2 = 4 * math.pi * math.degrees(1) ** 2
WARM_UP_CONES = 20
GOALS = (
    "Goals: ingest >= 100,000 stars/s into PostgreSQL; 15' cone p50 <= 5 ms sparse, <= 60 ms dense; "
    "cone time < 2x from 1 M to 10 M."
)

APASS_HEADER = (
    'radeg,raerr("),decdeg,decerr("),Johnson_V (V),Verr,Vnobs,Johnson_B (B),Berr,Bnobs,Sloan_u (SU),SUerr,'
    "SUnobs,Sloan_g (SG),SGerr,SGnobs,Sloan_r (SR),SRerr,SRnobs,Sloan_i (SI),SIerr,SInobs,Sloan_z (SZ),SZerr,"
    "SZnobs,PanSTARRS_Y (Y),Yerr,Ynobs\n"
)
GAIA_HEADER = (
    "source_id,ra,dec,phot_g_mean_mag,phot_g_mean_flux_over_error,phot_bp_mean_mag,"
    "phot_bp_mean_flux_over_error,phot_rp_mean_mag,phot_rp_mean_flux_over_error\n"
)
BLOCK = 500_000


# -- synthetic catalogs ------------------------------------------------------------------------------


def sparse_band(stars: int) -> float:
    """Half-width in Dec (degrees) of the equatorial band holding ``stars`` at the sparse density."""
    return math.degrees(math.asin(min(1.0, stars / SPARSE_DENSITY / SKY_DEG2)))


def dense_radius(stars: int) -> float:
    """Radius (degrees) of the disc holding ``stars`` at the dense density."""
    steradians = stars / DENSE_DENSITY / math.degrees(1) ** 2
    return math.degrees(math.acos(1 - steradians / (2 * math.pi)))


def offset(ra0: float, dec0: float, angle: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions at ``distance`` (degrees) from (ra0, dec0) towards position angle ``angle`` (radians)."""
    d0, s = math.radians(dec0), np.radians(distance)
    dec = np.arcsin(np.sin(d0) * np.cos(s) + np.cos(d0) * np.sin(s) * np.cos(angle))
    ra = math.radians(ra0) + np.arctan2(
        np.sin(angle) * np.sin(s) * np.cos(d0), np.cos(s) - np.sin(d0) * np.sin(dec)
    )
    return np.degrees(ra) % 360.0, np.degrees(dec)


def in_band(rng, count: int, half_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions on the sphere with |Dec| <= half_width."""
    limit = math.sin(math.radians(half_width))
    return rng.uniform(0, 360, count), np.degrees(np.arcsin(rng.uniform(-limit, limit, count)))


def in_disc(rng, count: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions on the sphere within ``radius`` of the dense centre."""
    cos_distance = rng.uniform(math.cos(math.radians(radius)), 1.0, count)
    return offset(*DENSE_CENTRE, rng.uniform(0, 2 * math.pi, count), np.degrees(np.arccos(cos_distance)))


def write_csv(path: Path, header: str, row: str, blocks, missing: str) -> None:
    """Write the header, then each block (a list of columns) formatted row by row; NaN as ``missing``."""
    with open(path, "w") as handle:
        handle.write(header)
        for columns in blocks:
            values = [value for star in zip(*(c.tolist() for c in columns), strict=True) for value in star]
            # One % over the whole block: the formatting runs in C, not once per row.
            handle.write(((row * len(columns[0])) % tuple(values)).replace("nan", missing))


def block_sizes(stars: int):
    """Sizes of the blocks a file of ``stars`` rows is generated in."""
    return (min(BLOCK, stars - start) for start in range(0, stars, BLOCK))


def with_gaps(rng, fraction: float, *columns: np.ndarray) -> np.ndarray:
    """Blank (NaN) a random ``fraction`` of the rows of the columns; returns where."""
    absent = rng.random(len(columns[0])) < fraction
    for column in columns:
        column[absent] = np.nan
    return absent


def apass_blocks(stars: int, rng):
    """Columns of an APASS DR10 file, block by block: random stars in the sparse band."""
    half_width = sparse_band(stars)
    for n in block_sizes(stars):
        ra, dec = in_band(rng, n, half_width)
        v = rng.uniform(10, 17, n)
        columns = [ra, rng.uniform(0.1, 0.6, n), dec, rng.uniform(0.1, 0.6, n)]
        # (offset from V, fraction missing) for V, B, u, g, r, i, z, y
        for shift, missing in ((0, 0), (0.6, 0.05), (1.8, 0.7), (0.3, 0.1), (-0.2, 0.1), (-0.3, 0.2),
                               (-0.35, 0.4), (-0.4, 0.6)):  # fmt: skip
            mag, err = v + shift + rng.normal(0, 0.1, n), rng.uniform(0.01, 0.2, n)
            absent = with_gaps(rng, missing, mag, err)
            columns += [mag, err, np.where(absent, 0, rng.integers(1, 12, n))]
        yield columns


def gaia_blocks(stars: int, rng):
    """Columns of a Gaia DR3 gaia_source file, block by block: random stars in the dense disc."""
    radius = dense_radius(stars)
    for n in block_sizes(stars):
        ra, dec = in_disc(rng, n, radius)
        g = rng.uniform(12, 20.5, n)
        columns = [rng.integers(1, 2**62, n), ra, dec]
        for shift, missing in ((0, 0), (0.4, 0.05), (-0.6, 0.05)):  # G, BP, RP
            mag = g + shift + rng.normal(0, 0.05, n)
            over_error = 10 ** (-0.4 * (mag - 21)) * 20
            with_gaps(rng, missing, mag, over_error)
            columns += [mag, over_error]
        yield columns


def cone_centres(rng, count: int, region: str, stars: int) -> list[tuple[float, float]]:
    """Random centres whose 15' cone lies inside the region of a catalog."""
    if region == "sparse":
        half_width = sparse_band(stars)
        limit = half_width if half_width >= 90 else half_width - RADIUS_DEG
        ra, dec = in_band(rng, count, limit)
    else:
        ra, dec = in_disc(rng, count, dense_radius(stars) - RADIUS_DEG)
    return list(zip(ra.tolist(), dec.tolist(), strict=True))


# -- one scratch database, in a child process ---------------------------------------------------------


def worker(spec: dict) -> dict:
    """Migrate the scratch database, ingest both files, time the cones; returns the figures."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gsafollowup.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from calibration.ingest import ingest_refcat
    from calibration.references import cone

    call_command("migrate", verbosity=0)
    postgres = connection.vendor == "postgresql"
    figures = {"server": f"PostgreSQL {connection.pg_version // 10000}" if postgres else "", "settle_s": 0.0}
    catalogs = (
        ("sparse", "APASS", spec["sparse"], "apass-dr10", spec["sparse_stars"]),
        ("dense", "GaiaDR3", spec["dense"], "gaia-dr3", spec["dense_stars"]),
    )
    for region, survey, path, format_name, _ in catalogs:
        result = ingest_refcat(survey, path, format_name=format_name)
        figures[region] = {"stars": result.stars, "ingest_s": result.seconds}
    if postgres:
        # Cones are timed in the steady state: otherwise autovacuum's first pass over the new
        # rows and the checkpoint after the load run at the same time on the two cores.
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) calibration_referencestar")
            cursor.execute("CHECKPOINT")
        figures["settle_s"] = time.perf_counter() - started
    rng = np.random.default_rng(7)
    for region, survey, _, _, stars in catalogs:
        centres = cone_centres(rng, WARM_UP_CONES + spec["cones"], region, stars)
        for ra, dec in centres[:WARM_UP_CONES]:
            cone(ra, dec, RADIUS_DEG, [survey])
        times, found = [], []
        for ra, dec in centres[WARM_UP_CONES:]:
            started = time.perf_counter()
            sets = cone(ra, dec, RADIUS_DEG, [survey])
            times.append(time.perf_counter() - started)
            found.append(sum(len(s) for s in sets))
        figures[region] |= {
            "p50_ms": float(np.percentile(times, 50) * 1e3),
            "p95_ms": float(np.percentile(times, 95) * 1e3),
            "per_cone": float(np.mean(found)),
        }
    return figures


def run_worker(url: str, spec: dict) -> dict:
    env = os.environ | {
        "DATABASE_URL": url,
        "DEBUG": "0",  # DEBUG would record every query and slow each cone
        "SECRET_KEY": secrets.token_hex(32),
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "calibration.benchmarks.refcat", "--worker", json.dumps(spec)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def postgres_server():
    """A throw-away PostgreSQL server, started the way the test suite starts its own."""
    from gsafollowup.testing.postgres import start_temporary_postgres

    server = start_temporary_postgres()
    if server is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql.")
    return server


def create_database(server, name: str) -> str:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=server.port, user="gsa", dbname="postgres")
    try:
        conn.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
    finally:
        conn.close()
    return f"postgres://gsa@127.0.0.1:{server.port}/{name}"


# -- the report -------------------------------------------------------------------------------------


def label(size: int) -> str:
    return f"{size / 1e6:g} M"


def table(rows: list[dict]) -> str:
    lines = [
        f"{'db':<9} {'size':>6} {'catalog':<16} {'stars':>10} {'ingest s':>9} {'stars/s':>9}   "
        f"{'cone p50 ms':>11} {'p95 ms':>7} {'stars/cone':>10}"
    ]
    for row in rows:
        for region, name in (("sparse", "APASS-like"), ("dense", "Gaia-like")):
            f = row[region]
            rate = f["stars"] / f["ingest_s"]
            lines.append(
                f"{row['db']:<9} {label(row['size']):>6} {name:<16} {f['stars']:>10,} {f['ingest_s']:>9.1f} "
                f"{rate:>9,.0f}   {f['p50_ms']:>11.2f} {f['p95_ms']:>7.2f} {f['per_cone']:>10.1f}"
            )
    return "\n".join(lines)


def growth(rows: list[dict]) -> list[str]:
    """Cone p50 at the largest size over the smallest, per database and density."""
    out = []
    for db in dict.fromkeys(r["db"] for r in rows):
        mine = sorted((r for r in rows if r["db"] == db), key=lambda r: r["size"])
        if len(mine) > 1:
            small, large = mine[0], mine[-1]
            ratios = ", ".join(
                f"{region} {large[region]['p50_ms'] / small[region]['p50_ms']:.2f}x"
                for region in ("sparse", "dense")
            )
            out.append(f"{db}: cone p50 {label(small['size'])} -> {label(large['size'])}: {ratios}")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="Stars per database, comma-separated")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--cones", type=int, default=200, help="Timed cones per catalog")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    workdir = Path(tempfile.mkdtemp(prefix="gsa-bench-"))
    server = None
    rows = []
    started, load = time.perf_counter(), os.getloadavg()[0]
    try:
        rng = np.random.default_rng(2021)
        specs = {}
        for size in sizes:
            sparse = min(size // 2, int(SPARSE_DENSITY * SKY_DEG2))
            spec = {"cones": args.cones, "sparse_stars": sparse, "dense_stars": size - sparse}
            spec["sparse"], spec["dense"] = (
                str(workdir / f"apass-{size}.csv"),
                str(workdir / f"gaia-{size}.csv"),
            )
            t = time.perf_counter()
            apass_row = "%.6f,%.3f,%.6f,%.3f" + ",%.3f,%.3f,%d" * 8 + "\n"
            write_csv(Path(spec["sparse"]), APASS_HEADER, apass_row, apass_blocks(sparse, rng), "NA")
            gaia_row = "%d,%.9f,%.9f" + ",%.6f,%.3f" * 3 + "\n"
            write_csv(Path(spec["dense"]), GAIA_HEADER, gaia_row, gaia_blocks(size - sparse, rng), "")
            print(
                f"wrote {label(size)} stars of synthetic catalogs in {time.perf_counter() - t:.0f} s",
                flush=True,
            )
            specs[size] = spec
        for db in databases:
            if db == "postgres":
                server = postgres_server()
            for size in sizes:
                if db == "sqlite":
                    url = f"sqlite:///{workdir / f'bench-{size}.sqlite3'}"
                else:
                    url = create_database(server, f"bench_{size}")
                t = time.perf_counter()
                figures = run_worker(url, specs[size])
                print(f"{db} {label(size)} done in {time.perf_counter() - t:.0f} s", flush=True)
                rows.append({"db": db, "size": size, **figures})
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    servers = ", ".join(sorted({r["server"] for r in rows if r["server"]}))
    print()
    print(
        f"Reference catalogs: {os.cpu_count()} CPUs (load average {load:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end), Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}{', ' + servers if servers else ''}"
    )
    print(
        f"15' cones at random centres: {args.cones} per row after {WARM_UP_CONES} warm-up cones; "
        f"sparse {SPARSE_DENSITY:,.0f}/deg^2, dense {DENSE_DENSITY:,.0f}/deg^2; files in random order"
    )
    print(table(rows))
    for line in growth(rows):
        print(line)
    settled = ", ".join(f"{label(r['size'])} {r['settle_s']:.0f} s" for r in rows if r["server"])
    if settled:
        print(f"postgres: VACUUM (ANALYZE) + CHECKPOINT after loading, before the cones: {settled}")
    print(GOALS)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
