"""Time read_catalog on the real catalogs of tests/data, with the goals of issue 21 beside them.

    python -m calibration.benchmarks.read [--repeat 41] [--against ../main]

Each file is read from bytes already in memory (as an upload is), ``--repeat`` times after one
warm-up read, the files interleaved so that changes of load hit them alike. Wall time, median
and minimum. With ``--against CHECKOUT`` the reader of another checkout of the project
(its calibration/catalogs.py) is timed in the same loop, call for call, and shown beside.
Figures are printed; nothing is asserted.
"""

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path

from calibration.catalogs import read_catalog

DATA = Path(__file__).resolve().parent.parent.parent / "tests" / "data"
#: (file, goal in ms): the 9.4k-row ASCII_HEAD DECam frame and the FITS_LDAC frame.
FILES = (
    ("decam-grb210605a-g-night1.cat", 10.0),
    ("decam-field-308-44-instrumental.cat", None),
    ("t90-osn-hd204827-R.ldac.fits", 3.0),
)


def other_reader(checkout: str):
    """read_catalog of another checkout's calibration/catalogs.py, loaded under another name."""
    path = Path(checkout).resolve() / "calibration" / "catalogs.py"
    spec = importlib.util.spec_from_file_location("other_checkout_catalogs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.read_catalog


def main(argv=None) -> int:
    """Read each file repeatedly and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=41, help="timed reads of each file (default 41)")
    parser.add_argument("--against", help="another checkout of the project, timed side by side")
    opts = parser.parse_args(argv)
    readers = {"this": read_catalog}
    if opts.against:
        readers["against"] = other_reader(opts.against)
    contents = {name: (DATA / name).read_bytes() for name, _ in FILES}
    seconds = {(reader, name): [] for reader in readers for name in contents}
    for name, content in contents.items():
        for read in readers.values():
            read(content, filename=name)
    for _ in range(opts.repeat):
        for name, content in contents.items():
            for reader, read in readers.items():
                started = time.perf_counter()
                read(content, filename=name)
                seconds[(reader, name)].append(time.perf_counter() - started)
    print(f"read_catalog, {opts.repeat} reads of each; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    beside = f"{'against p50':>13}" if opts.against else ""
    print(f"{'file':<38}{'MB':>6}{'rows':>7}{'p50 ms':>9}{'min ms':>9}{beside}   goal (p50)")
    for name, goal in FILES:
        values = seconds[("this", name)]
        p50 = 1000 * statistics.median(values)
        rows = len(read_catalog(contents[name], filename=name))
        verdict = "" if goal is None else f"<= {goal:.0f} ms: {'met' if p50 <= goal else 'MISSED'}"
        size = len(contents[name]) / 1e6
        other = f"{1000 * statistics.median(seconds[('against', name)]):>13.1f}" if opts.against else ""
        print(f"{name:<38}{size:>6.2f}{rows:>7}{p50:>9.1f}{1000 * min(values):>9.1f}{other}   {verdict}")
    if opts.against:
        print(f"against: {Path(opts.against).resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
