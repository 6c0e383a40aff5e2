"""calibrate() over every candidate band against STDPipe's calibrate_photometry for one band.

    .venv-bench/bin/python -m calibration.benchmarks.versus_stdpipe [--repeat 41]

STDPipe is an optional benchmark dependency, never the product's: install it into a separate
environment with ``calibration/benchmarks/requirements-stdpipe.txt`` (the product's numpy,
scipy and astropy pins plus stdpipe==0.4.1). Both run in this one process, interleaved, on the
same parsed arrays of each real DECam frame of tests/data against the real APASS extract:
STDPipe for Sloan g with a g-r colour term (its matching radius 1", spatial order 0,
``update=False``: only the fit), this project's calibrate() once with every candidate band of
APASS and once with APASS/g forced. Reading the files is not timed. Wall time per call,
median and minimum of ``--repeat``; the goal is calibrate() over all bands at least 2x faster
than STDPipe's one band. Figures are printed; nothing is asserted.
"""

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np
from astropy.table import Table

from calibration.benchmark import DATA, REAL_REFERENCES, apass_reference_set
from calibration.catalogs import read_catalog
from calibration.photometry import calibrate

#: The real frames of the GRB 210605A field with an APASS extract (tests/data).
FRAMES = sorted(DATA.glob("decam-grb210605a-*.cat"))
#: A matched APASS star of the field, the target of the upload tests and the demo.
TARGET = (24.088671351, -48.679764368)
GOAL_SPEEDUP = 2.0


def stdpipe_inputs(catalog, apass) -> tuple[Table, Table]:
    """The same arrays as astropy Tables with the column names STDPipe expects."""
    flags = catalog.flags if catalog.flags is not None else np.zeros(len(catalog), dtype=np.int64)
    x = catalog.x if catalog.x is not None else np.zeros(len(catalog))
    y = catalog.y if catalog.y is not None else np.zeros(len(catalog))
    obj = Table(
        {
            "ra": catalog.ra,
            "dec": catalog.dec,
            "mag": catalog.mag,
            "magerr": catalog.magerr,
            "flags": flags,
            "x": x,
            "y": y,
        }
    )
    cat = Table(
        {
            "RAJ2000": apass.ra,
            "DEJ2000": apass.dec,
            "g": apass.mag["g"],
            "gerr": apass.err["g"],
            "r": apass.mag["r"],
        }
    )
    return obj, cat


def time_frame(catalog, apass, calibrate_photometry, repeat: int) -> dict[str, list[float]]:
    """Wall seconds of each call, the three kinds interleaved so that load changes hit all alike."""
    obj, cat = stdpipe_inputs(catalog, apass)
    runs = {
        "stdpipe": lambda: calibrate_photometry(
            obj,
            cat,
            sr=1 / 3600,
            cat_col_mag="g",
            cat_col_mag_err="gerr",
            cat_col_mag1="g",
            cat_col_mag2="r",
            order=0,
            update=False,
        ),
        "all": lambda: calibrate(catalog, [apass], *TARGET),
        "g": lambda: calibrate(catalog, [apass], *TARGET, force_filter="APASS/g"),
    }
    seconds = {name: [] for name in runs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # STDPipe's astropy unit warnings
        for run in runs.values():
            run()  # warm caches and imports
        for _ in range(repeat):
            for name, run in runs.items():
                started = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - started)
    return seconds


def main(argv=None) -> int:
    """Time both on every frame and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=41, help="timed calls of each (default 41)")
    opts = parser.parse_args(argv)
    try:
        from stdpipe.pipeline import calibrate_photometry
    except ImportError:
        raise SystemExit(
            "STDPipe is not installed here: python -m venv .venv-bench && "
            ".venv-bench/bin/pip install -r calibration/benchmarks/requirements-stdpipe.txt"
        ) from None
    import stdpipe

    apass = apass_reference_set(REAL_REFERENCES)
    load = os.getloadavg()[0]
    version = getattr(stdpipe, "__version__", "0.4.1")
    print(
        f"calibrate() vs STDPipe {version} calibrate_photometry, one process,"
        f" {opts.repeat} interleaved calls each; {os.cpu_count()} CPUs, load {load:.1f},"
        f" Python {platform.python_version()}, numpy {np.__version__}"
    )
    if len(FRAMES) < 3:
        names = ", ".join(f.name for f in FRAMES)
        print(f"(only {len(FRAMES)} DECam frame(s) of the field in tests/data: {names})")
    print(
        f"{'frame':<34}{'sources':>8}{'STDPipe g ms':>14}{'all bands ms':>14}{'g forced ms':>13}"
        f"{'speed-up':>10}   goal (all bands vs STDPipe's one)"
    )
    for path in FRAMES:
        catalog = read_catalog(path)
        seconds = time_frame(catalog, apass, calibrate_photometry, opts.repeat)
        p50 = {name: 1000 * statistics.median(values) for name, values in seconds.items()}
        low = {name: 1000 * min(values) for name, values in seconds.items()}
        speedup = p50["stdpipe"] / p50["all"]
        verdict = "met" if speedup >= GOAL_SPEEDUP else "MISSED"
        print(
            f"{path.name:<34}{len(catalog):>8}{p50['stdpipe']:>14.1f}{p50['all']:>14.1f}{p50['g']:>13.1f}"
            f"{speedup:>9.2f}x   >= {GOAL_SPEEDUP:.0f}x: {verdict}"
        )
        print(
            f"{'  (minimum of the calls)':<42}{low['stdpipe']:>14.1f}{low['all']:>14.1f}{low['g']:>13.1f}"
            f"{low['stdpipe'] / low['all']:>9.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
