"""Flushing, threads, exit, log rotation and the pandas-free csv path, in real processes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from stage_sdk import runtime
from stage_sdk.metrics import MetricsLogger
from tests.sdk_helpers import StageEnv, ok


def test_records_reach_the_file_by_interval_threshold_and_exit(tmp_path: Path) -> None:
    env = StageEnv(tmp_path, extra={"GOLDFISH_METRICS_FLUSH_INTERVAL": "0.2",
                                    "GOLDFISH_METRICS_FLUSH_THRESHOLD": "10"})
    code = """
        import json, os, time
        from pathlib import Path
        from goldfish.metrics import log_metric
        path = Path(os.environ["GOLDFISH_OUTPUTS_DIR"], ".goldfish", "metrics.jsonl")
        count = lambda: len(path.read_text().splitlines()) if path.exists() else 0
        log_metric("a", 1.0, step=0)
        seen = [count()]
        time.sleep(1.0)
        seen.append(count())                    # the interval flusher wrote it
        for i in range(1, 11):
            log_metric("a", float(i), step=i)
        seen.append(count())                    # 10 buffered records hit the threshold
        log_metric("a", 99.0, step=99)          # left for the exit hook
        print("SEEN", json.dumps(seen))
    """
    proc = ok(env.run(code))
    seen = json.loads(proc.stdout.split("SEEN ", 1)[1])
    assert seen == [0, 1, 11]
    assert [r["step"] for r in env.metrics()][-1] == 99 and len(env.metrics()) == 12


def test_concurrent_threads_write_whole_records(tmp_path: Path) -> None:
    lg = MetricsLogger(tmp_path)
    try:
        def work(t: int) -> None:
            for i in range(5000):
                lg.log_metric(f"thread{t}/value", float(i), step=i)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        lg.finish()
    finally:
        lg.close()
    records = [json.loads(x) for x in (tmp_path / ".goldfish" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 20_000
    for t in range(4):
        assert [r["step"] for r in records if r["name"] == f"thread{t}/value"] == list(range(5000))


def test_runtime_log_rotates_keeping_the_newest_half(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLDFISH_OUTPUTS_DIR", str(tmp_path))
    log = tmp_path / ".goldfish" / "logs.txt"
    log.parent.mkdir()
    line = "[2026-01-01 00:00:00] INFO: " + "x" * 73 + "\n"  # 100 bytes
    log.write_text("".join(line.replace("x" * 6, f"{i:06d}", 1) for i in range(100_001)))
    runtime.runtime_log("newest")
    text = log.read_text()
    assert len(text.encode()) <= runtime.LOG_MAX_BYTES // 2 + 200
    assert text.endswith("INFO: newest\n") and text.startswith("[2026-01-01")
    assert "000000x" not in text and "100000x" in text


def test_runtime_helpers_never_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GOLDFISH_OUTPUTS_DIR", str(tmp_path))
    (tmp_path / ".goldfish").write_text("not a directory")
    runtime.runtime_log("still printed", level="bogus level")
    assert "INFO: still printed" in capsys.readouterr().out
    assert runtime.heartbeat("x", force=True) is False
    assert runtime.read_heartbeat() is None and runtime.get_heartbeat_age() is None
    assert runtime.should_stop() is False and runtime.get_stop_reason() is None


def test_heartbeat_rate_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLDFISH_OUTPUTS_DIR", str(tmp_path))
    assert runtime.heartbeat("a", force=True)
    assert not runtime.heartbeat("b")
    time.sleep(1.05)
    assert runtime.heartbeat("c")
    assert runtime.read_heartbeat()["message"] == "c"


def test_csv_without_pandas(tmp_path: Path) -> None:
    env = StageEnv(tmp_path,
                   inputs={"t": {"type": "csv", "schema": None}},
                   outputs={"o": {"type": "csv", "schema": {"kind": "tabular", "columns": ["id", "score", "tag"],
                                                            "dtypes": {"id": "int64", "score": "float64"}}}},
                   svs={"enabled": True, "default_enforcement": "blocking"})
    env.env()
    (env.in_dir / "t.csv").write_text("id,score,tag\n1,0.5,a\n2,,b\n3,1e3,c\n")
    code = """
        import sys
        sys.modules["pandas"] = None  # as if pandas were not installed
        import json
        from goldfish.io import load_input, save_output
        t = load_input("t")
        print("TYPES", json.dumps({k: str(v.dtype) for k, v in t.items()}))
        save_output("o", t)
        print("PANDAS", "pandas" in sys.modules and sys.modules["pandas"] is not None)
    """
    proc = ok(env.run(code))
    assert 'TYPES {"id": "int64", "score": "float64", "tag": "<U1"}' in proc.stdout
    assert "PANDAS False" in proc.stdout
    assert (env.out_dir / "o.csv").read_text().splitlines() == ["id,score,tag", "1,0.5,a", "2,,b", "3,1000.0,c"]
    assert env.stats()["o.score"]["null_ratio"] == pytest.approx(1 / 3)


def test_forked_children_log_without_duplicating_the_parents_buffer(tmp_path: Path) -> None:
    env = StageEnv(tmp_path)
    code = """
        import multiprocessing as mp
        from goldfish.metrics import log_metric, finish
        from goldfish.io import flush_metrics

        def worker(i):
            log_metric(f"worker{i}/items", float(i), step=0)
            flush_metrics()  # fork children leave through os._exit: no atexit flush

        if __name__ == "__main__":
            log_metric("parent/buffered", 1.0, step=0)  # still buffered at fork time
            ctx = mp.get_context("fork")
            procs = [ctx.Process(target=worker, args=(i,)) for i in range(3)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            finish()
    """
    ok(env.run(code))
    names = sorted(r["name"] for r in env.metrics())
    assert names == ["parent/buffered", "worker0/items", "worker1/items", "worker2/items"]
