"""Batches on the task engines: throughput, scaling, submit-to-done latency and queue overhead.

    python -m calibration.benchmarks.jobs [--frames 200] [--backends database,rq] [--workers 1,2]

Starts a temporary PostgreSQL and gunicorn on 127.0.0.1 with the real demo data (and a
temporary redis-server for the RQ engine), then for each worker count starts that many
``manage.py run_worker`` processes and sends one batch (a zip) of ``--frames`` variants of the
real DECam catalog, each with its own MJD (manifest.csv), so none is a duplicate. Figures come
from the jobs' own timestamps; nothing is asserted:

- throughput: frames / (last finished - batch stored), and the ratio of 2 workers to 1;
- submit-to-done: finished - created, per frame (p50, p95);
- queue overhead per job: the workers' busy time per frame minus the time inside the service
  (claim, dispatch, lease, engine round trip, recording the end).
"""

import argparse
import io
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import requests

from gsafollowup.testing.postgres import find_binaries, free_port
from gsafollowup.testing.production import DEMO_ALERT, DEMO_CATALOG, ROOT, demo_stack

from .upload import percentile

GOALS_MS = {"database": 5.0, "rq": 2.0}


def start_redis(workdir: str) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server (or --backends database)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--save", ""]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    return process, f"redis://127.0.0.1:{port}/0"


def batch_zip(frames: int, base_mjd: float) -> bytes:
    catalog = DEMO_CATALOG.read_bytes()
    buffer = io.BytesIO()
    manifest = ["file,mjd"]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for i in range(frames):
            name = f"frame{i:04}.cat"
            archive.writestr(name, catalog + f"# benchmark frame {base_mjd} {i}\n".encode())
            manifest.append(f"{name},{base_mjd + i / 1000:.3f}")
        archive.writestr("manifest.csv", "\n".join(manifest) + "\n")
    return buffer.getvalue()


def run_round(stack, env: dict, workers: int, frames: int, base_mjd: float, logdir: Path) -> dict:
    processes = []
    for n in range(workers):
        log = open(logdir / f"worker-{base_mjd:.0f}-{n}.log", "ab")  # noqa: SIM115 (the child's)
        processes.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "run_worker"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    time.sleep(3)  # the workers import Django and numpy before the batch arrives
    archive = batch_zip(frames, base_mjd)
    answer = requests.post(
        stack.url + "/api/v1/batches/",
        data={"event_id": DEMO_ALERT, "match_dist": "2"},
        files={"files": ("night.zip", archive)},
        headers={"Authorization": f"Hashtag {stack.hashtag}"},
        timeout=600,
    )
    if answer.status_code != 202:
        raise SystemExit(f"batch answered {answer.status_code}: {answer.text[:300]}")
    batch = answer.json()["id"]
    unfinished = "SELECT count(*) FROM jobs_job WHERE batch_id = %s AND state NOT IN ('succeeded', 'failed')"
    while stack.sql(unfinished, (batch,))[0][0]:
        time.sleep(0.5)
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # Seen once with two RQ workers under load; the figures are taken from the table anyway.
            print(f"worker {process.pid} ignored SIGTERM for 60 s; killed")
            process.kill()
            process.wait()
    rows = stack.sql(
        "SELECT state, extract(epoch FROM created), extract(epoch FROM started_at),"
        " extract(epoch FROM finished_at), service_seconds FROM jobs_job WHERE batch_id = %s",
        (batch,),
    )
    failed = [row for row in rows if row[0] != "succeeded"]
    created = min(float(r[1]) for r in rows)
    first_start = min(float(r[2]) for r in rows)
    last_end = max(float(r[3]) for r in rows)
    latency = [float(r[3]) - float(r[1]) for r in rows]
    service = [float(r[4]) for r in rows if r[4] is not None]
    busy_per_frame = workers * (last_end - first_start) / len(rows)
    return {
        "frames": len(rows),
        "failed": len(failed),
        "throughput": len(rows) / (last_end - created),
        "p50": percentile(latency, 50),
        "p95": percentile(latency, 95),
        "service": statistics.mean(service),
        "overhead_ms": (busy_per_frame - statistics.mean(service)) * 1000,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--backends", default="database,rq")
    parser.add_argument("--workers", default="1,2")
    opts = parser.parse_args(argv)
    bindir = find_binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found: apt-get install postgresql")
    counts = [int(n) for n in opts.workers.split(",")]
    load = os.getloadavg()[0]
    print(f"{platform.node()}: {os.cpu_count()} cores, load {load:.1f}; {opts.frames} frames per batch")
    for backend in opts.backends.split(","):
        workdir = tempfile.mkdtemp(prefix="gsa-bench-jobs-")
        redis = None
        env = {"TASKS_BACKEND": backend, "JOBS_POLL_INTERVAL": "0.05", "LOG_LEVEL": "WARNING"}
        try:
            if backend == "rq":
                redis, env["REDIS_URL"] = start_redis(workdir)
            with demo_stack(bindir, workers=2, env=env) as stack:
                results = {}
                for index, workers in enumerate(counts):
                    base = 50000.0 + 10 * index
                    r = run_round(stack, stack.server.env, workers, opts.frames, base, Path(workdir))
                    results[workers] = r
                    print(
                        f"{backend:8} {workers} worker(s): {r['frames']} frames ({r['failed']} failed), "
                        f"{r['throughput']:.2f} frames/s, submit-to-done p50 {r['p50']:.1f} s"
                        f" / p95 {r['p95']:.1f} s, service {r['service'] * 1000:.0f} ms/frame,"
                        f" queue overhead {r['overhead_ms']:.1f} ms/job (goal <= {GOALS_MS[backend]:g} ms)"
                    )
                if 1 in results and 2 in results:
                    ratio = results[2]["throughput"] / results[1]["throughput"]
                    print(
                        f"{backend:8} scaling 2 workers / 1: {ratio:.2f} (goal close to 2 with 2 idle cores)"
                    )
        finally:
            if redis is not None:
                redis.terminate()
                redis.wait()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
