"""Object storage against gcp-storage-emulator, beside raw google-cloud-storage calls in the same run.

1. upload of a --mb file: GcsStorage.put_file vs. Blob.upload_from_filename (same chunking rule:
   resumable above 8 MB) — ratio raw/goldfish, target >= 0.9;
2. download: GcsStorage.get_file (stream-hashed, verified against crc32c, atomic rename) vs.
   Blob.download_to_filename (the library's own crc32c check) — target >= 0.9;
3. save_checkpoint of a 100 MB float32 array from a stage process (GOLDFISH_STORAGE_BACKEND=gcs)
   vs. np.save to a file + Blob.upload_from_filename, both in fresh processes.

Samples alternate between the two sides so load drift hits both.

    python benchmarks/storage_bench.py [--mb 64] [--ckpt-mb 100] [--samples 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from goldfish.storage import GcsStorage

CKPT = """
import os, sys, time, numpy as np
from stage_sdk import io as gio
x = np.random.default_rng(0).standard_normal({n}, dtype=np.float32)
t0 = time.perf_counter()
gio.save_checkpoint("warm", np.zeros(1))  # first call: lazy import + client set-up
first = time.perf_counter() - t0
t0 = time.perf_counter()
gio.save_checkpoint("state", x, step=1)
print(first, time.perf_counter() - t0)
"""

BASE = """
import os, sys, time, tempfile, numpy as np
from google.cloud import storage
x = np.random.default_rng(0).standard_normal({n}, dtype=np.float32)
bucket = storage.Client().bucket("bench")
bucket.blob("warm").upload_from_string(b"x")  # warmed like the SDK side
t0 = time.perf_counter()
path = os.path.join(tempfile.mkdtemp(), "x.npy")
np.save(path, x)
bucket.blob("baseline/x.npy").upload_from_filename(path, checksum="crc32c")
print(time.perf_counter() - t0)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--ckpt-mb", type=int, default=100)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    port = _port()
    emu = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                            "--port", str(port), "--in-memory"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the GCS emulator did not start") from None
                time.sleep(0.05)
        os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
        from google.cloud import storage

        client = storage.Client()
        client.create_bucket("bench")
        store = GcsStorage("bench", client=client)
        bucket = client.bucket("bench")
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            data = tmp / "blob.bin"
            data.write_bytes(os.urandom(args.mb << 20))
            up_gf, up_raw, down_gf, down_raw = [], [], [], []
            for i in range(args.samples):
                t0 = time.perf_counter()
                blob = bucket.blob(f"raw/{i}")
                blob.upload_from_filename(str(data), checksum="crc32c")
                up_raw.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                store.put_file(data, f"gf/{i}")
                up_gf.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                bucket.blob(f"raw/{i}").download_to_filename(str(tmp / "raw.out"))
                down_raw.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                store.get_file(f"gf/{i}", tmp / "gf.out")
                down_gf.append(time.perf_counter() - t0)
            mb = args.mb
            for what, gf, raw in (("upload", up_gf, up_raw), ("download", down_gf, down_raw)):
                g, r = statistics.median(gf), statistics.median(raw)
                print(f"{what:<9} {mb} MB: goldfish {g:.3f} s ({mb / g:.0f} MB/s), raw google-cloud-storage "
                      f"{r:.3f} s ({mb / r:.0f} MB/s); throughput ratio goldfish/raw {r / g:.2f} (target >= 0.9)")

            n = (args.ckpt_mb << 20) // 4
            env = {**os.environ, "PYTHONPATH": str(REPO), "GOLDFISH_RUN_ID": "stage-0000beef",
                   "GOLDFISH_STORAGE_BACKEND": "gcs", "GOLDFISH_GCS_BUCKET": "bench",
                   "GOLDFISH_OUTPUTS_DIR": str(tmp / "outputs")}
            ck, base, first = [], [], []
            for _ in range(args.samples):
                out = subprocess.run([sys.executable, "-c", BASE.format(n=n)], env=env, capture_output=True, text=True,
                                     check=True)
                base.append(float(out.stdout.strip().splitlines()[-1]))
                out = subprocess.run([sys.executable, "-c", CKPT.format(n=n)], env=env, capture_output=True, text=True,
                                     check=True)
                f, c = (float(v) for v in out.stdout.strip().splitlines()[-1].split())
                first.append(f)
                ck.append(c)
            c, b = statistics.median(ck), statistics.median(base)
            print(f"save_checkpoint {args.ckpt_mb} MB array: {c:.3f} s; np.save + upload_from_filename {b:.3f} s; "
                  f"overhead {c - b:+.3f} s ({c / b:.2f}x). A stage's first save_checkpoint also pays "
                  f"{statistics.median(first):.3f} s once (lazy import of google-cloud-storage, client set-up).")
    finally:
        emu.terminate()
        emu.wait(timeout=10)


if __name__ == "__main__":
    main()
