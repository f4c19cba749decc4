"""Object storage (goldfish.storage): the same behaviour from a local directory and a GCS bucket
(gcp-storage-emulator), checksum-verified downloads, and the stage SDK's checkpoints on GCS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from goldfish.storage import GcsStorage, LocalStorage, StorageError, materialize
from goldfish.storage.base import ObjectInfo
from tests.source_helpers import gcs, gcs_emulator

__all__ = ["gcs", "gcs_emulator"]  # fixtures used by name
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["local", "gcs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    client = request.getfixturevalue("gcs")
    bucket = f"b-{os.urandom(4).hex()}"
    client.create_bucket(bucket)
    return GcsStorage(bucket, client=client)


def test_roundtrip_list_stat_delete(store: Any, tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"hello world" * 100)
    info = store.put_file(src, "runs/stage-00000001/outputs/a.bin")
    assert info.size == 1100 and info.crc32c and info.key == "runs/stage-00000001/outputs/a.bin"
    store.put_bytes(b"{}", "runs/stage-00000001/exit.json")
    store.put_bytes(b"x", "runs/stage-00000002/exit.json")
    assert [i.key for i in store.list("runs/stage-00000001/")] == [
        "runs/stage-00000001/exit.json", "runs/stage-00000001/outputs/a.bin"]
    assert store.stat("runs/nope") is None
    got = store.get_file("runs/stage-00000001/outputs/a.bin", tmp_path / "dl" / "a.bin")
    assert (tmp_path / "dl" / "a.bin").read_bytes() == src.read_bytes()
    assert got.crc32c == info.crc32c
    assert store.get_bytes("runs/stage-00000001/exit.json") == b"{}"
    assert store.get_bytes("runs/none.json") is None
    with pytest.raises(StorageError, match="does not exist"):
        store.get_file("runs/none.json", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert store.delete("runs/stage-00000001/exit.json") is True
    assert store.delete("runs/stage-00000001/exit.json") is False
    assert store.delete_prefix("runs/") == 2
    assert store.list("runs/") == []


def test_directories(store: Any, tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "w.npy").write_bytes(b"1" * 10)
    (src / "sub" / "cfg.json").write_text("{}")
    infos = store.put_dir(src, "runs/stage-00000001/outputs/model")
    assert sorted(i.key for i in infos) == ["runs/stage-00000001/outputs/model/sub/cfg.json",
                                           "runs/stage-00000001/outputs/model/w.npy"]
    store.get_dir("runs/stage-00000001/outputs/model/", tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "cfg.json").read_text() == "{}"
    os.symlink(src / "w.npy", src / "link")
    with pytest.raises(StorageError, match="symlink"):
        store.put_dir(src, "runs/x")


@pytest.mark.parametrize("key", ["../escape", "a//b", "/abs", "a/.gf-tmp-x", "a/./b", ""])
def test_bad_keys_are_refused(key: str, tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    with pytest.raises(StorageError, match="key"):
        store.put_bytes(b"x", key)
    assert list(tmp_path.iterdir()) == []


def test_large_object_resumable_and_verified(store: Any, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(np.random.default_rng(0).bytes(9 << 20))  # past the resumable threshold
    info = store.put_file(src, "big/blob.bin")
    assert info.size == 9 << 20
    store.get_file("big/blob.bin", tmp_path / "big2.bin")
    assert (tmp_path / "big2.bin").read_bytes() == src.read_bytes()


def test_corrupted_download_is_refused_and_leaves_nothing(store: Any, tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"abcdef" * 1000)
    if isinstance(store, LocalStorage):
        store.put_file(src, "k/a.bin")
        path = store.path("k/a.bin")
        st = path.stat()
        path.write_bytes(b"abcdeX" * 1000)  # bit rot: same size, same mtime
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        with pytest.raises(StorageError, match=r"corrupted.*crc32c"):
            store.get_file("k/a.bin", tmp_path / "out.bin")
    else:
        # The object says its sha256 is something else: the download must not be trusted.
        store.put_file(src, "k/a.bin", sha256="0" * 64)
        with pytest.raises(StorageError, match=r"corrupted.*sha256"):
            store.get_file("k/a.bin", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gf-tmp-")]


def test_verify_catches_every_kind_of_mismatch() -> None:
    from goldfish.storage.base import Digests, verify

    d = Digests()
    d.update(b"abc")
    good = ObjectInfo(key="k", uri="u", size=3, crc32c=d.crc32c, sha256=d.sha256)
    verify(good, d, where="x")
    for bad in (ObjectInfo(key="k", uri="u", size=4), ObjectInfo(key="k", uri="u", size=3, crc32c="AAAAAA=="),
                ObjectInfo(key="k", uri="u", size=3, sha256="f" * 64)):
        with pytest.raises(StorageError):
            verify(bad, d, where="x")


def test_materialize_caches_by_generation(gcs: Any, tmp_path: Path) -> None:
    from goldfish.config.model import GoldfishConfig

    config = GoldfishConfig.model_validate({"project_name": "p", "dev_repo_path": "p-dev",
                                            "gcs": {"bucket": "test-bucket"}})
    blob = gcs.bucket("test-bucket").blob("data/train.npy")
    blob.upload_from_string(b"v1")
    cache = tmp_path / "cache"
    path = materialize(config, cache, "gs://test-bucket/data/train.npy")
    assert path.read_bytes() == b"v1"
    first = path.stat().st_mtime_ns
    assert materialize(config, cache, "gs://test-bucket/data/train.npy").stat().st_mtime_ns == first
    blob.upload_from_string(b"v2")  # a new generation is fetched again
    assert materialize(config, cache, "gs://test-bucket/data/train.npy").read_bytes() == b"v2"
    gcs.bucket("test-bucket").blob("data/dir/a").upload_from_string(b"A")
    gcs.bucket("test-bucket").blob("data/dir/b/c").upload_from_string(b"C")
    folder = materialize(config, cache, "gs://test-bucket/data/dir/")
    assert (folder / "a").read_bytes() == b"A" and (folder / "b" / "c").read_bytes() == b"C"
    with pytest.raises(StorageError, match="Nothing is stored"):
        materialize(config, cache, "gs://test-bucket/none/")


SDK_STAGE = r'''
import json, os, sys
import numpy as np
from stage_sdk import io as gio
arr = np.arange(12.0).reshape(3, 4)
gio.save_checkpoint("state", arr, step=1)
gio.save_checkpoint("state", arr * 2, step=5)
gio.save_checkpoint("cfg", {"lr": 0.1})
d = os.path.join(os.environ["GOLDFISH_OUTPUTS_DIR"], "model")
os.makedirs(d, exist_ok=True)
open(os.path.join(d, "w.txt"), "w").write("weights")
gio.save_checkpoint("model", __import__("pathlib").Path(d))
print(json.dumps({"list": gio.list_checkpoints(),
                  "last": np.load(gio.load_checkpoint("state")).tolist(),
                  "first": np.load(gio.load_checkpoint("state", step=1)).tolist(),
                  "model": open(os.path.join(gio.load_checkpoint("model"), "w.txt")).read()}))
'''


def test_sdk_checkpoints_go_to_gcs_from_inside_the_stage(gcs: Any, gcs_emulator: str, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "GOLDFISH_OUTPUTS_DIR": str(outputs),
           "GOLDFISH_RUN_ID": "stage-0000abcd", "GOLDFISH_STORAGE_BACKEND": "gcs",
           "GOLDFISH_GCS_BUCKET": "test-bucket", "STORAGE_EMULATOR_HOST": gcs_emulator}
    out = subprocess.run([sys.executable, "-c", SDK_STAGE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["list"]["state"] == {"steps": [1, 5], "latest": False, "location": "gcs"}
    assert result["last"] == (np.arange(12.0).reshape(3, 4) * 2).tolist()
    assert result["first"] == np.arange(12.0).reshape(3, 4).tolist()
    assert result["model"] == "weights"
    keys = {b.name for b in gcs.list_blobs("test-bucket", prefix="checkpoints/stage-0000abcd/")}
    assert "checkpoints/stage-0000abcd/state/step_5/data.npy" in keys
    assert "checkpoints/stage-0000abcd/state/step_5/.goldfish-checkpoint.json" in keys
    assert "checkpoints/stage-0000abcd/model/latest/w.txt" in keys
    # A second stage process (a new attempt of the same run) finds them: the resume pattern.
    out2 = subprocess.run([sys.executable, "-c",
                           "from stage_sdk import io as g; import numpy as np;"
                           "print(np.load(g.load_checkpoint('state')).sum())"],
                          env={**env, "GOLDFISH_OUTPUTS_DIR": str(tmp_path / "fresh")},
                          capture_output=True, text=True, timeout=120)
    assert out2.returncode == 0, out2.stderr
    assert float(out2.stdout.strip()) == float((np.arange(12.0) * 2).sum())


@pytest.mark.parametrize("uri", ["gs://../x", "gs://b/../../etc/passwd", "gs://bucket/a//b", "gs://UPPER/x", "s3://b/x"])
def test_remote_uris_that_could_escape_the_cache_are_refused(uri: str, tmp_path: Path) -> None:
    from goldfish.config.model import GoldfishConfig

    config = GoldfishConfig.model_validate({"project_name": "p", "dev_repo_path": "p-dev"})
    with pytest.raises(StorageError):
        materialize(config, tmp_path / "cache", uri)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*"))
