"""Cost of provenance without copying, against baselines measured in the same process.

For a local file of --mb megabytes:
1. register_source (stream-hashes the file once) vs. the baseline of copying the file
   (shutil.copyfile: what a copy-into-the-store design would pay at least).
2. verify of an unchanged source (stat only) vs. the baseline of one sha256 pass over the file.
3. verify of a touched but identical file (re-hash, then the stored mtime is refreshed) vs. the
   same sha256 baseline.

    python benchmarks/source_bench.py [--mb 256] [--samples 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from goldfish.init import init_project
from goldfish.project import Project

REASON = "benchmark of the data registry costs"


def _median(fn: Callable[[], object], samples: int) -> float:
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _meta(size: int) -> dict[str, object]:
    return {"schema_version": 1, "description": "Benchmark blob of random bytes for the registry",
            "source": {"format": "file", "size_bytes": size, "created_at": "2026-01-01T00:00:00Z"},
            "schema": {"kind": "file", "content_type": "application/octet-stream"}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        init_project(tmp / "proj", "bench")
        project = Project.open(tmp / "proj", source="test")
        data = tmp / "blob.bin"
        with open(data, "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
        size = data.stat().st_size
        meta = _meta(size)

        def sha() -> str:
            digest = hashlib.sha256()
            with open(data, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            return digest.hexdigest()

        copy_s = _median(lambda: shutil.copyfile(data, tmp / "copy.bin"), args.samples)
        sha_s = _median(sha, args.samples)
        counter = iter(range(10_000))
        register_s = _median(lambda: project.sources.register_source(
            f"blob{next(counter)}", str(data), str(meta["description"]), REASON, meta), args.samples)
        verify_s = _median(lambda: project.sources.verify("blob0"), args.samples * 20)

        def touched() -> object:
            os.utime(data, ns=(time.time_ns(), time.time_ns()))
            return project.sources.verify("blob0")

        touched_s = _median(touched, args.samples)
        print(f"file: {args.mb} MB")
        print(f"register_source: {register_s * 1000:.1f} ms = {register_s / copy_s:.2f}x a file copy "
              f"({copy_s * 1000:.1f} ms)")
        print(f"verify unchanged: {verify_s * 1e6:.0f} µs = {verify_s / sha_s:.5f}x one sha256 pass "
              f"({sha_s * 1000:.1f} ms)")
        print(f"verify touched (re-hash): {touched_s * 1000:.1f} ms = {touched_s / sha_s:.2f}x one sha256 pass")


if __name__ == "__main__":
    main()
