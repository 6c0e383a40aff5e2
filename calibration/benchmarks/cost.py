"""What one hostile upload costs a worker, on the production configuration.

    python -m calibration.benchmarks.cost [--only NAME] [--keep-going]

Starts a temporary PostgreSQL and gunicorn with one worker on 127.0.0.1
(gsafollowup.testing.production, as the other benchmarks), loads the real demo data, then
sends every hostile input class, one at a time, to the legacy ``POST /cgi/upload``: every file
of tests/data/bad/ and generated ones (a row of 2,000,000 values, very long lines, many short
rows, blank and comment lines, gzip bombs of several shapes, multi-member gzip, trailing
garbage, FITS tables declaring huge sizes, huge FITS headers, many HDUs) and the largest
catalog the limits accept. For each it prints the HTTP status, the worker's peak RSS increase
(VmHWM after the answer minus VmRSS before, the peak reset through /proc/<pid>/clear_refs) and
the CPU seconds the worker used (utime + stime of /proc/<pid>/stat before and after), with the
goals beside each (GOAL_MB, GOAL_CPU_S) and an overall PASS/FAIL line. Nothing is asserted;
the exit status is 1 on FAIL.
"""

import argparse
import gzip
import io
import os
import platform
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from astropy.io import fits

from gsafollowup.testing.postgres import find_binaries
from gsafollowup.testing.production import DEMO_ALERT, DEMO_CATALOG, ROOT, demo_stack

#: The goal: no upload of at most MAX_UPLOAD_MB raises a worker's RSS by more than this or holds
#: it longer than this many CPU seconds before its answer, whatever its bytes.
GOAL_MB = 300
GOAL_CPU_S = 5.0
MB = 2**20
BAD = ROOT / "tests" / "data" / "bad"
HEADER = b"#   1 ALPHA_J2000\n#   2 DELTA_J2000\n#   3 MAG_AUTO\n#   4 MAGERR_AUTO\n"


@dataclass
class Hostile:
    """One input: its name, a function giving its bytes, and the file name it is sent under."""

    name: str
    make: Callable[[], bytes]
    filename: str = "hostile.cat"


def gzipped(parts, level: int = 9) -> bytes:
    """One gzip member of the concatenated parts (an iterable of bytes), written piece by piece."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = io.BytesIO()
    for part in parts:
        out.write(compressor.compress(part))
    out.write(compressor.flush())
    return out.getvalue()


def repeated(block: bytes, total: int):
    """``block`` again and again, ``total`` bytes in all (for gzip bombs)."""
    for _ in range(total // len(block)):
        yield block
    yield block[: total % len(block)]


def decam_rows() -> tuple[bytes, bytes]:
    """(header, rows) of the real DECam catalog of demo/."""
    lines = DEMO_CATALOG.read_bytes().splitlines(keepends=True)
    return b"".join(x for x in lines if x.startswith(b"#")), b"".join(
        x for x in lines if not x.startswith(b"#")
    )


def decam_catalog(n_rows: int) -> bytes:
    """The real DECam catalog's rows repeated to ``n_rows`` (positions repeat: it still calibrates)."""
    header, rows = decam_rows()
    lines = rows.splitlines(keepends=True)
    whole, rest = divmod(n_rows, len(lines))
    return header + rows * whole + b"".join(lines[:rest])


def fits_file(*hdus) -> bytes:
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(buffer)
    return buffer.getvalue()


def small_table(n: int = 10) -> fits.BinTableHDU:
    names = ("ALPHA_J2000", "DELTA_J2000", "MAG_AUTO", "MAGERR_AUTO")
    columns = [fits.Column(name=name, format="E", array=np.ones(n, dtype=np.float32)) for name in names]
    return fits.BinTableHDU.from_columns(columns)


def with_card(data: bytes, keyword: str, value: str) -> bytes:
    """``data`` with the first card of ``keyword`` after the primary HDU set to a raw value."""
    card = f"{keyword:<8}= {value:>20}".ljust(80).encode()
    position = data.index(keyword.encode().ljust(8), 2880)
    return data[:position] + card + data[position + 80 :]


def fits_huge_naxis2() -> bytes:
    """A table of 16-byte rows that declares 2,500,000 rows and holds them (40 MB)."""
    table = fits_file(small_table(10))
    header_end = table.index(b"END" + b" " * 77, 2880)
    header_end = header_end + 2880 - (header_end % 2880)
    rows = 2_500_000
    data = table[:header_end] + bytes(16 * rows)
    data += bytes(-len(data) % 2880)
    return with_card(data, "NAXIS2", str(rows))


def fits_huge_header() -> bytes:
    """A primary header of 40 MB of COMMENT cards, then a small table."""
    table = fits_file(small_table(10))
    cards = b"".join(f"COMMENT card {i}".ljust(80).encode() for i in range(1000))
    body = table[: table.index(b"END" + b" " * 77)]
    end = b"END".ljust(80)
    header = body + cards * 500 + end
    header += b" " * (-len(header) % 2880)
    return header + table[2880:]


def fits_many_hdus() -> bytes:
    """8,000 empty image extensions before the table (each an HDU for astropy)."""
    image = fits.ImageHDU().header.tostring().encode()
    return fits_file() + image * 8000 + fits_file(small_table(10))[2880:]


def fits_many_columns() -> bytes:
    """Thirty tables of 999 columns each."""
    columns = [fits.Column(name=f"C{i}", format="B", array=np.zeros(2, dtype=np.uint8)) for i in range(999)]
    return fits_file(*[fits.BinTableHDU.from_columns(columns) for _ in range(30)])


def fits_negative_naxis1() -> bytes:
    return with_card(fits_file(small_table(10)), "NAXIS1", "-16")


def fits_gzip_bomb() -> bytes:
    """A gzipped FITS file of 1 GB (a small table, then zeros)."""
    table = fits_file(small_table(10))
    return gzipped([table, *repeated(bytes(MB), 1024 * MB)])


def multi_member_gzip() -> bytes:
    """300,000 gzip members of a few bytes each."""
    header_member = gzip.compress(HEADER)
    return header_member + gzip.compress(b"#\n") * 300_000


def generated() -> list[Hostile]:
    return [
        Hostile("row of 2,000,000 values (4 MB)", lambda: HEADER + b"1 " * 2_000_000 + b"\n"),
        Hostile("row of 2,000,000 values (4 MB), no newline", lambda: HEADER + b"1 " * 2_000_000),
        Hostile("one 45 MB line of digits", lambda: HEADER + b"9" * (45 * MB)),
        Hostile("45 MB of 60 kB rows (1,000 values)", lambda: wide_rows(45 * MB)),
        Hostile("6,000,000 short rows (48 MB)", lambda: HEADER + b"1 2 3 4\n" * 6_000_000),
        Hostile("45,000,000 blank lines", lambda: HEADER + b"\n" * (45 * MB)),
        Hostile("20,000,000 comment lines", lambda: HEADER + b"#\n" * 20_000_000),
        Hostile("40 MB header of comments", lambda: b"# comment line\n" * (40 * MB // 15) + HEADER),
        Hostile("header declares column 99,999,999", lambda: HEADER + b"#  99999999 X\n1 2 3 4\n"),
        Hostile("gzip: 1 GB of blanks (1 MB)", lambda: gzipped(repeated(b" " * MB, 1024 * MB)), "b.cat.gz"),
        Hostile("gzip: 1 GB of newlines", lambda: gzipped(repeated(b"\n" * MB, 1024 * MB)), "b.cat.gz"),
        Hostile(
            "gzip: 1 GB of 60 kB comment lines",
            lambda: gzipped([HEADER, b"10 20 15 0.01\n", *repeated(b"#" + b" " * 60_000 + b"\n", 1024 * MB)]),
            "b.cat.gz",
        ),
        Hostile(
            "gzip: 5,000,000 rows (100 MB)",
            lambda: gzipped([HEADER, *repeated(b"10.0 20.0 15.0 0.01\n" * 1000, 100 * MB)]),
            "r.cat.gz",
        ),
        Hostile("gzip: 300,000 members", multi_member_gzip, "m.cat.gz"),
        Hostile(
            "gzip: catalog + 1 GB second member",
            lambda: gzip.compress(decam_catalog(9000)) + gzipped(repeated(b"\n" * MB, 1024 * MB)),
            "m.cat.gz",
        ),
        Hostile(
            "gzip: trailing garbage", lambda: gzip.compress(decam_catalog(9000)) + b"garbage!", "g.cat.gz"
        ),
        Hostile("gzip: FITS of 1 GB", fits_gzip_bomb, "b.fits.gz"),
        Hostile("FITS: NAXIS2 2,500,000 (40 MB of rows)", fits_huge_naxis2, "n.fits"),
        Hostile("FITS: 40 MB primary header", fits_huge_header, "h.fits"),
        Hostile("FITS: 8,000 HDUs", fits_many_hdus, "u.fits"),
        Hostile("FITS: 30 tables of 999 columns", fits_many_columns, "c.fits"),
        Hostile("FITS: NAXIS1 = -16", fits_negative_naxis1, "x.fits"),
        Hostile("largest accepted: 330,000 real rows (48 MB)", lambda: decam_catalog(330_000)),
        Hostile(
            "largest accepted: 900,000 real rows, gzip",
            lambda: gzipped([decam_catalog(900_000)]),
            "big.cat.gz",
        ),
    ]


def wide_rows(total: int) -> bytes:
    header = HEADER + b"#   5 VECTOR\n"
    row = (
        b"10.0 20.0 15.0 0.01 " + b"0000000000000000000000000000000000000000000000000000000001 " * 996 + b"\n"
    )
    return header + row * (total // len(row))


def corpus() -> list[Hostile]:
    """Every file of tests/data/bad/ (the benchmark reads them from the repository)."""
    files = sorted(p for p in BAD.iterdir() if p.name != "README.md")
    return [Hostile(f"bad/{p.name}", (lambda p=p: p.read_bytes()), p.name) for p in files]


def every_input() -> list[Hostile]:
    return corpus() + generated()


# ---------------------------------------------------------------- the worker's figures


def proc_stat(pid: int) -> tuple[float, int]:
    """(CPU seconds used, utime + stime; VmRSS in kB) of a process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return cpu, status_kb(pid, "VmRSS")


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def send(url: str, hashtag: str, item: Hostile, content: bytes) -> tuple[int | str, str]:
    data = {
        "EventID": DEMO_ALERT,
        "hashtag": hashtag,
        "MJD": "59373.1",
        "matchDist": "2",
        "noPlot": "1",
        "outputFormat": "json",
        "dryRun": "1",
    }
    try:
        response = requests.post(
            url + "/cgi/upload", data=data, files={"sexCat": (item.filename, content)}, timeout=200
        )
    except requests.RequestException as error:
        return "error", type(error).__name__
    return response.status_code, " ".join(response.text.split())[:90]


def measure(stack, item: Hostile) -> dict:
    """Send one input to the one worker; its status, answer, RSS increase (MB) and CPU seconds."""
    content = item.make()
    (pid,) = stack.server.worker_pids()
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    cpu_before, rss_before = proc_stat(pid)
    status, answer = send(stack.url, stack.hashtag, item, content)
    try:
        cpu_after, _ = proc_stat(pid)
        peak = status_kb(pid, "VmHWM")
    except (OSError, KeyError):
        # The worker is gone (killed by gunicorn's timeout or the OOM killer).
        stack.server.wait_healthy()
        return {"status": status, "answer": "WORKER DIED: " + answer, "mb": float("inf"), "cpu": float("inf")}
    return {
        "status": status,
        "answer": answer,
        "size": len(content),
        "mb": (peak - rss_before) / 1024,
        "cpu": cpu_after - cpu_before,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="only inputs whose name contains this text")
    opts = parser.parse_args(argv)
    bindir = find_binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql.")
    inputs = [i for i in every_input() if not opts.only or opts.only in i.name]
    load = os.getloadavg()[0]
    print(
        f"Cost of hostile uploads, POST /cgi/upload (dry run), gunicorn 1 worker + PostgreSQL on 127.0.0.1; "
        f"{os.cpu_count()} CPUs, load average {load:.1f}, Python {platform.python_version()}",
        flush=True,
    )
    print(f"{'input':<46}{'MB':>6}{'status':>7}{'RSS+ MB':>9}{'CPU s':>7}  goal   answer", flush=True)
    failed = 0
    with demo_stack(bindir, workers=1, env={"GUNICORN_MAX_REQUESTS": "0"}) as stack:
        for item in inputs:
            figures = measure(stack, item)
            met = figures["mb"] <= GOAL_MB and figures["cpu"] <= GOAL_CPU_S
            met = met and isinstance(figures["status"], int) and figures["status"] < 500
            failed += not met
            verdict = "met" if met else "MISSED"
            print(
                f"{item.name[:45]:<46}{figures.get('size', 0) / MB:>6.1f}{figures['status']!s:>7}"
                f"{figures['mb']:>9.0f}{figures['cpu']:>7.2f}  {verdict:<6} {figures['answer']}",
                flush=True,
            )
    print(
        f"goals: RSS increase <= {GOAL_MB} MB and CPU <= {GOAL_CPU_S:g} s per upload, no 5xx; "
        f"load average {os.getloadavg()[0]:.1f} at end"
    )
    print(
        f"{'PASS' if not failed else 'FAIL'}: {len(inputs) - failed} of {len(inputs)} inputs within the goals"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
