"""The embedded store under real processes: concurrency, crash consistency, caching, versioning."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from goldfish.errors import Conflict, NotFound, StoreError
from goldfish.store import STORE_SCHEMA_VERSION, Store

REPO = Path(__file__).resolve().parent.parent


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


WORKER = """
    import sys
    from pathlib import Path
    from goldfish.store import Store
    store = Store(Path(sys.argv[1]))
    me = sys.argv[2]
    for i in range(int(sys.argv[3])):
        with store.transaction() as tx:
            counters = tx.table("counters")
            total = counters.get_doc("total") or {"n": 0}
            counters.put("total", {"n": total["n"] + 1})
            mine = counters.get_doc(me) or {"n": 0}
            counters.put(me, {"n": mine["n"] + 1})
            tx.table("docs", "ws/shared").add({"worker": me, "i": i})
            tx.table("runs", "ws/shared").add({"worker": me, "i": i}, doc_id=f"{me}-{i:03d}")
            tx.append_event("audit", {"worker": me, "i": i})
"""


def test_four_processes_250_transactions_each(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root)
    procs = [_spawn(WORKER, str(root), f"w{k}", "250") for k in range(4)]
    for p in procs:
        _out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    store = Store(root)
    docs = store.table("docs", "ws/shared").docs()
    assert len(docs) == 1000
    ids = [d["id"] for d in docs]
    assert len(set(ids)) == 1000
    assert sorted(int(i) for i in ids) == list(range(1, 1001))
    counters = store.table("counters")
    assert counters.get_doc("total")["n"] == 1000
    for k in range(4):
        assert counters.get_doc(f"w{k}")["n"] == 250
        assert sorted(d["i"] for d in docs if d["worker"] == f"w{k}") == list(range(250))
    events, _ = store.read_events("audit")
    assert len(events) == 1000
    assert len({(e["worker"], e["i"]) for e in events}) == 1000
    runs = store.table("runs", "ws/shared")  # a sharded table: 1,000 documents over 4 shard files
    assert runs.count_raw() == 1000 and len({d["id"] for d in runs.iter_raw()}) == 1000
    assert len(list((root / "ws").glob("shared.runs.*.json"))) == 4


CRASHER = """
    import sys
    from pathlib import Path
    from goldfish.store import Store
    store = Store(Path(sys.argv[1]))
    seq = int(sys.argv[2])
    print("ready", flush=True)
    while True:
        seq += 1
        with store.transaction() as tx:
            tx.table("state", "project").put("a", {"seq": seq, "pad": "x" * 2000})
            tx.table("state", "ws/one").put("b", {"seq": seq})
            tx.table("runs", "ws/two").add({"seq": seq}, doc_id=f"{seq:08d}")  # sharded: head + shard files
            tx.append_event("seqs", {"seq": seq})
"""


def _check_consistent(root: Path) -> int:
    store = Store(root)
    with store.transaction() as tx:  # taking the lock rolls any interrupted commit forward
        a = tx.table("state", "project").get_doc("a")
        b = tx.table("state", "ws/one").get_doc("b")
        logged = sorted(d["seq"] for d in tx.table("runs", "ws/two").docs())
    events, _ = store.read_events("seqs")
    if a is None:
        assert b is None and not logged and not events
        return 0
    n = a["seq"]
    assert b["seq"] == n
    assert logged == list(range(1, n + 1))
    assert [e["seq"] for e in events] == list(range(1, n + 1))
    return n


def test_sigkilled_writer_never_leaves_a_partial_transaction(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root)
    rng = random.Random(1234)
    seq = 0
    for _ in range(100):
        proc = _spawn(CRASHER, str(root), str(seq))
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, 0.03))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seq = _check_consistent(root)
    assert seq > 0, "the writer never committed a transaction"
    assert not list(root.rglob(".*.tmp")), "orphaned temp files were not swept"


def test_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    with store.transaction() as tx:
        tx.table("t").put("x", {"v": 1})
    before = (tmp_path / "s" / "project.json").read_bytes()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.table("t").put("x", {"v": 2})
        tx.table("t", "ws/w").put("y", {"v": 3})
        raise RuntimeError("boom")
    assert (tmp_path / "s" / "project.json").read_bytes() == before
    assert store.table("t").get_doc("x")["v"] == 1
    assert not (tmp_path / "s" / "ws" / "w.json").exists()


def test_nested_transactions_join_and_reads_do_not_see_uncommitted(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    with store.transaction() as outer:
        outer.table("t").put("a", {"v": 1})
        with store.transaction() as inner:
            assert inner is outer
            inner.table("t").put("b", {"v": 2})
        assert store.table("t").get_doc("a") is None  # lock-free readers see only committed state
    assert store.table("t").get_doc("b") == {"v": 2, "id": "b"}


def test_cached_read_reparses_only_on_change(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    with store.transaction() as tx:
        tx.table("t").put("a", {"v": 1})
    first = store._load("project")
    assert store._load("project") is first  # unchanged identity: no re-parse
    other = Store(tmp_path / "s")  # another process's view
    with other.transaction() as tx:
        tx.table("t").put("a", {"v": 2})
    assert store.table("t").get_doc("a")["v"] == 2


def test_documents_are_replaced_not_mutated(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    with store.transaction() as tx:
        tx.table("t").put("a", {"v": 1, "nested": {"k": 1}})
    snapshot = store.table("t").get_doc("a")
    with store.transaction() as tx:
        tx.table("t").patch("a", {"v": 2})
        with pytest.raises(TypeError):
            tx.table("t").update({"v": 3})
    assert snapshot["v"] == 1
    assert store.table("t").get_doc("a")["v"] == 2


def test_cas_and_errors(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    with store.transaction() as tx:
        runs = tx.table("runs", "ws/w")
        runs.add({"state": "pending"}, doc_id="stage-00000001")
        assert runs.cas("stage-00000001", "state", {"pending", "preparing"}, {"state": "running"})["state"] == "running"
        assert runs.cas("stage-00000001", "state", "pending", {"state": "failed"}) is None
        with pytest.raises(Conflict):
            runs.add({"state": "x"}, doc_id="stage-00000001")
        with pytest.raises(NotFound):
            runs.cas("stage-ffffffff", "state", "pending", {})
    assert store.table("runs", "ws/w").get_doc("stage-00000001")["state"] == "running"


def test_newer_store_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "s"
    Store(root)
    (root / "STORE_VERSION.json").write_text(json.dumps({"schema": STORE_SCHEMA_VERSION + 1, "written_by": "9.9"}))
    with pytest.raises(StoreError, match="newer Goldfish"):
        Store(root)


def test_corrupt_partition_names_the_file_and_fix(tmp_path: Path) -> None:
    root = tmp_path / "s"
    store = Store(root)
    (root / "project.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"project\.json") as info:
        store.table("t").docs()
    assert info.value.fix and "backup" in info.value.fix


def test_tail_events_newest_first(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    for i in range(3000):
        store.append_event("audit", {"i": i, "ws": "a" if i % 2 else "b"})
    tail = store.tail_events("audit", 5, lambda e: e["ws"] == "a")
    assert [e["i"] for e in tail] == [2999, 2997, 2995, 2993, 2991]
    events, offset = store.read_events("audit")
    assert len(events) == 3000
    assert store.read_events("audit", offset=offset) == ([], offset)
