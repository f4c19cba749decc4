"""Sharded tables: a write touches one small file, old shards stay cold, the API is unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from goldfish.errors import Conflict, NotFound
from goldfish.store import DEFAULT_SHARDING, STORE_SCHEMA_VERSION, Store


def _small(root: Path, size: int = 3) -> Store:
    store = Store(root)
    store.sharding = {**store.sharding, "runs": size}
    return store


def test_documents_fill_shards_in_order_and_read_back_through_one_api(tmp_path: Path) -> None:
    store = _small(tmp_path / "s")
    with store.transaction() as tx:
        runs = tx.table("runs", "ws/a")
        for i in range(8):
            runs.add({"i": i}, doc_id=f"stage-{i:08x}")
    files = sorted(p.name for p in (tmp_path / "s" / "ws").glob("a.runs.*.json"))
    assert files == ["a.runs.0000.json", "a.runs.0001.json", "a.runs.0002.json"]
    runs = store.table("runs", "ws/a")
    assert runs.count_raw() == 8 and runs.has("stage-00000007")
    assert [d["i"] for d in runs.iter_raw()] == list(range(8))
    assert runs.get_doc("stage-00000005") == {"i": 5, "id": "stage-00000005"}
    assert [d["i"] for d in runs.where(i=6)] == [6]
    assert list(runs.raw()) == [f"stage-{i:08x}" for i in range(8)]
    assert store.partitions("ws") == ["ws/a"]  # shard files are not partitions of their own
    with store.transaction() as tx:
        t = tx.table("runs", "ws/a")
        with pytest.raises(Conflict):
            t.add({"i": 0}, doc_id="stage-00000000")
        with pytest.raises(ValueError, match="explicit ids"):
            t.add({"i": 9})
        with pytest.raises(NotFound):
            t.patch("stage-ffffffff", {"i": 1})
        assert t.cas("stage-00000001", "i", 1, {"i": 10})["i"] == 10
        assert t.cas("stage-00000001", "i", 1, {"i": 11}) is None
        assert t.delete("stage-00000002") and not t.delete("stage-00000002")
    runs = store.table("runs", "ws/a")
    assert runs.get_doc("stage-00000001")["i"] == 10 and not runs.has("stage-00000002")


def test_patching_a_new_document_leaves_cold_shards_untouched(tmp_path: Path) -> None:
    store = _small(tmp_path / "s", size=4)
    with store.transaction() as tx:
        for i in range(12):
            tx.table("runs", "ws/a").add({"state": "running", "i": i}, doc_id=f"r{i:02d}")
    folder = tmp_path / "s" / "ws"
    before = {p.name: os.stat(p).st_mtime_ns for p in folder.glob("*.json")}
    with store.transaction() as tx:
        tx.table("runs", "ws/a").patch("r11", {"state": "completed"})
    after = {p.name: os.stat(p).st_mtime_ns for p in folder.glob("*.json")}
    changed = sorted(n for n in after if after[n] != before.get(n))
    assert changed == ["a.runs.0002.json"]


def test_raw_view_is_the_same_object_until_a_shard_changes(tmp_path: Path) -> None:
    store = _small(tmp_path / "s")
    with store.transaction() as tx:
        for i in range(5):
            tx.table("runs", "ws/a").add({"i": i}, doc_id=f"r{i}")
    first = store.table("runs", "ws/a").raw()
    assert store.table("runs", "ws/a").raw() is first
    with store.transaction() as tx:
        tx.table("runs", "ws/a").patch("r4", {"i": 40})
    second = store.table("runs", "ws/a").raw()
    assert second is not first and second["r4"]["i"] == 40 and first["r4"]["i"] == 4


def test_sharding_policy_is_stamped_and_honoured_by_every_opener(tmp_path: Path) -> None:
    root = tmp_path / "s"
    Store(root)
    stamp = orjson.loads((root / "STORE_VERSION.json").read_bytes())
    assert stamp["schema"] == STORE_SCHEMA_VERSION and stamp["sharding"] == DEFAULT_SHARDING
    with Store(root).transaction() as tx:
        tx.table("runs", "ws/a").add({"x": 1}, doc_id="r1")
    assert (root / "ws" / "a.runs.0000.json").exists()
    assert Store(root).table("runs", "ws/a").get_doc("r1") == {"x": 1, "id": "r1"}


def test_schema_1_store_is_migrated_into_shards(tmp_path: Path) -> None:
    root = tmp_path / "s"
    (root / "ws").mkdir(parents=True)
    (root / "events").mkdir()
    (root / "STORE_VERSION.json").write_bytes(orjson.dumps({"schema": 1, "written_by": "0.1.0"}))
    head = {"runs": {f"r{i}": {"i": i, "id": f"r{i}"} for i in range(300)}, "versions": {"v1": {"id": "v1"}}}
    (root / "ws" / "a.json").write_bytes(orjson.dumps(head))
    store = Store(root)
    runs = store.table("runs", "ws/a")
    assert runs.count_raw() == 300 and runs.get_doc("r299")["i"] == 299
    assert store.table("versions", "ws/a").get_doc("v1") == {"id": "v1"}
    assert "runs" not in orjson.loads((root / "ws" / "a.json").read_bytes())
    assert (root / "ws" / "a.runs.0001.json").exists()  # 300 runs > one shard of 256
    assert orjson.loads((root / "STORE_VERSION.json").read_bytes())["schema"] == STORE_SCHEMA_VERSION
