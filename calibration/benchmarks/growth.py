"""How the cost of one upload's core work grows with its size, and its peak memory.

    python -m calibration.benchmarks.growth [--repeat 7]

In this process, no server: read_catalog of ASCII_HEAD catalogs of 1k, 10k and 100k sources
(the real DECam rows of tests/data, repeated with their positions shifted by a fraction of an
arcsecond so that every row is a distinct source), calibrate() of synthetic frames
(calibration.benchmark.make_frame, two surveys) of those sizes, and calibrate() of a
10,000-source frame against 100, 10k and 100k reference stars in the cone. Then one child
process per catalog size reads and calibrates it once and reports its peak RSS above its
baseline after imports, beside the in-memory size of the arrays of that upload (raw bytes,
catalog columns, the real APASS columns it is calibrated against). The peak is Linux's VmHWM,
reset (/proc/self/clear_refs) once the inputs are made. Median wall time of ``--repeat``;
nothing is asserted.
The stored-stars and light-curve rows come from ``calibration.benchmarks.refcat`` and
``manage.py bench_lightcurve``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from calibration.benchmark import Scenario, apass_reference_set, make_frame
from calibration.catalogs import read_catalog
from calibration.photometry import calibrate

DATA = Path(__file__).resolve().parent.parent.parent / "tests" / "data"
REAL = DATA / "decam-grb210605a-g-night1.cat"
SIZES = (1_000, 10_000, 100_000)
REFERENCES = (100, 10_000, 100_000)
#: The demo target, a matched APASS star of the real field (the memory runs calibrate on it).
TARGET = (24.088671351, -48.679764368)
#: Memory goal of issue 21: peak RSS of one upload above the baseline, over its arrays' size.
MEMORY_GOAL = 3.0


def ascii_catalog(rows: int) -> bytes:
    """An ASCII_HEAD catalog of ``rows`` rows: the real header and rows, repeated and shifted."""
    lines = REAL.read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    body = [line.split() for line in lines if not line.startswith("#") and line.strip()]
    values = np.array(body, dtype=float)
    copies = -(-rows // len(values))
    blocks = []
    for k in range(copies):
        block = values.copy()
        block[:, [7, 10]] += k * 0.2 / 3600  # X_WORLD, ALPHA_SKY: 0.2" per copy
        blocks.append(block)
    table = np.vstack(blocks)[:rows]
    text = "\n".join(" ".join(f"{v:.10g}" for v in row) for row in table.tolist())
    return ("".join(header) + text + "\n").encode()


def growth_row(work: str, size: int, seconds: float) -> str:
    """One line of the growth table: the work, its size, ms, and ms per 1,000 of the size."""
    return f"{work:<44}{size:>9,}{1000 * seconds:>9.1f}{1e6 * seconds / size:>11.2f}"


def timed(function, repeat: int) -> float:
    """Median wall seconds of ``repeat`` calls after one warm-up."""
    function()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def frame(n_sources: int, n_references: int):
    scenario = Scenario("growth", n_calibrators=n_references, n_sources=n_sources, second_survey=True)
    return make_frame(scenario, np.random.default_rng(n_sources + n_references))


def memory_child(path: str) -> None:
    """In a fresh process: read and calibrate once; print peak RSS growth and the arrays' size."""
    content = Path(path).read_bytes()
    references = [apass_reference_set()]
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from the current RSS
    baseline = _status_bytes("VmRSS")
    catalog = read_catalog(content)
    result = calibrate(catalog, references, *TARGET)
    peak = _status_bytes("VmHWM")
    arrays = len(content) + sum(
        getattr(catalog, name).nbytes
        for name in ("ra", "dec", "mag", "magerr", "flags", "fwhm", "class_star", "x", "y")
        if getattr(catalog, name) is not None
    )
    arrays += sum(
        r.ra.nbytes + r.dec.nbytes + sum(m.nbytes for m in (*r.mag.values(), *r.err.values()))
        for r in references
    )
    print(
        json.dumps(
            {
                "rows": len(catalog),
                "peak_above_baseline": peak - baseline,
                "arrays": arrays,
                "ok": result is not None,
            }
        )
    )


def _status_bytes(key: str) -> int:
    """A memory figure of this process from /proc/self/status (kB there)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def main(argv=None) -> int:
    """Print the growth table and the memory table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed calls of each (default 7)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.memory_child:
        memory_child(opts.memory_child)
        return 0
    print(f"growth, median of {opts.repeat}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'work':<44}{'size':>9}{'ms':>9}{'ms per 1k':>11}")
    for rows in SIZES:
        content = ascii_catalog(rows)
        seconds = timed(lambda content=content: read_catalog(content), opts.repeat)
        print(growth_row("read_catalog, ASCII_HEAD sources", rows, seconds))
    for rows in SIZES:
        f = frame(rows, 300)
        seconds = timed(
            lambda f=f: calibrate(f.catalog, f.references, f.target_ra, f.target_dec), opts.repeat
        )
        print(growth_row("calibrate(), sources (300 refs, 2 surveys)", rows, seconds))
    for refs in REFERENCES:
        f = frame(10_000, refs)
        seconds = timed(
            lambda f=f: calibrate(f.catalog, f.references, f.target_ra, f.target_dec), opts.repeat
        )
        print(growth_row("calibrate(), refs in cone (10k sources)", refs, seconds))
    print(
        f"\npeak RSS of one read + calibrate above the process baseline (goal <= {MEMORY_GOAL:g}x the arrays)"
    )
    print(f"{'sources':>9}{'arrays MB':>11}{'peak MB':>9}{'ratio':>7}")
    for rows in SIZES:
        # Written here: making the catalog in the child would raise its peak before the baseline.
        with tempfile.NamedTemporaryFile(suffix=".cat") as handle:
            handle.write(ascii_catalog(rows))
            handle.flush()
            child = subprocess.run(
                [sys.executable, "-m", "calibration.benchmarks.growth", "--memory-child", handle.name],
                capture_output=True,
                text=True,
                check=True,
            )
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        ratio = figures["peak_above_baseline"] / figures["arrays"]
        verdict = "met" if ratio <= MEMORY_GOAL else "MISSED"
        arrays, peak = figures["arrays"] / 1e6, figures["peak_above_baseline"] / 1e6
        print(f"{rows:>9,}{arrays:>11.1f}{peak:>9.1f}{ratio:>7.2f}  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
