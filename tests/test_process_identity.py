"""Never signal a stranger: a stage's process group is signalled only while it is provably ours.

The recorded pgid of a dead stage may be reused by an unrelated process group (pid wrap-around,
a reboot). These tests start such a stranger and show that reconciliation, cleanup and cancel leave
it alone and settle the run ``orphaned``; and that leftovers that do carry the run's id are still
killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from goldfish.procs import group_carries, pid_alive
from goldfish.runs.backends.base import LaunchSpec
from goldfish.runs.backends.local import LocalBackend
from goldfish.runs.lease import LeaseFile
from goldfish.runs.reconciler import reconcile
from goldfish.runs.state import ws_partition
from tests.run_helpers import REASON, SPEC, file_stage, make_env, wait_state, wait_terminal

SLEEPER = "import time\nfor _ in range(600):\n    time.sleep(0.1)\n"
NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


def _wait_gone(pid: int, timeout: float = 20.0) -> None:
    """Dead (a zombie counts); then, briefly, reaped so its number is free (an init that does not
    reap leaves it taken, and ``_stranger_with_pid`` falls back)."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} survived SIGKILL"
        time.sleep(0.02)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _stranger_with_pid(pid: int) -> tuple[subprocess.Popen[bytes], bool]:
    """``setsid sleep 300`` as process (and group) ``pid`` when the kernel lets us choose the next
    pid (root: ns_last_pid); else any stranger group (the caller then points the record at it).
    Returns the process and whether it got ``pid``."""
    for _ in range(200):
        try:
            NS_LAST_PID.write_text(str(pid - 1))
        except OSError:
            break
        proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
        if proc.pid == pid:
            return proc, True
        proc.kill()
        proc.wait()
        if Path(f"/proc/{pid}").exists():  # someone else got it: give up the exact number
            break
    return subprocess.Popen(["sleep", "300"], start_new_session=True), False


def _lease_pid(project: Any, prun_id: str) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lease = LeaseFile(project.runs_dir / prun_id).read()
        if lease is not None and lease.pid:
            return lease.pid
        time.sleep(0.05)
    raise AssertionError("runner never took its lease")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait(timeout=10)


def test_stranger_with_the_dead_stage_pgid_survives_reconciliation(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([file_stage("gone")], {"gone": SLEEPER})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    run_id = started.stage_runs[0].stage_run_id
    doc = wait_state(project, run_id, {"running"})
    handle = doc["backend_handle"]
    assert handle["pgid"] == handle["pid"] and handle["run_id"] == run_id
    os.kill(_lease_pid(project, started.pipeline_run_id), signal.SIGKILL)
    os.killpg(handle["pgid"], signal.SIGKILL)  # the whole stage dies: no exit code is ever written
    _wait_gone(handle["pid"])
    stranger, same_pid = _stranger_with_pid(handle["pgid"])
    try:
        if not same_pid:
            # The kernel would not hand out that number here: record the stranger's pid as the
            # stage's instead (with the dead stage's start time): what Goldfish reads is the same.
            with project.store.transaction() as tx:
                tx.table("runs", ws_partition(doc["workspace"])).patch(
                    run_id, {"backend_handle": {**handle, "pid": stranger.pid, "pgid": stranger.pid}})
        assert os.getpgid(stranger.pid) == stranger.pid
        # What `goldfish status` does when it opens the project.
        subprocess.run([sys.executable, "-m", "goldfish", "--project", str(env.root), "status"], check=True,
                       capture_output=True, timeout=120)
        done = wait_terminal(project, started.pipeline_run_id)
        lost = project.runs.get(run_id)
        assert (lost["state"], lost["cause"], lost["infra_outcome"]) == ("terminated", "orphaned", "crashed")
        assert lost["exit_code"] is None and done.status == "failed"
        assert stranger.poll() is None, f"the stranger (pid {stranger.pid}) was killed: {stranger.returncode}"
        # Cleanup, cancel and a second reconcile are no more dangerous.
        backend = LocalBackend()
        stale = {**handle, "pid": stranger.pid, "pgid": stranger.pid}
        assert not backend.owns(stale)
        backend.cleanup(stale)
        assert backend.cancel(stale, 0.1).lost
        reconcile(project)
        time.sleep(0.2)  # a wrongly sent signal is delivered at once; nothing to wait for otherwise
        assert stranger.poll() is None
    finally:
        _stop(stranger)


def _launch(tmp_path: Path, code: str) -> tuple[LocalBackend, dict[str, Any]]:
    backend = LocalBackend()
    run_id = "stage-0000abcd"
    stage_env = {**os.environ, "GOLDFISH_RUN_ID": run_id}
    spec = LaunchSpec(run_id=run_id, run_dir=tmp_path, cwd=tmp_path, env=stage_env,
                      argv=[sys.executable, "-c", code])
    return backend, backend.launch(spec)


def _read_pid(path: Path) -> int:
    deadline = time.monotonic() + 20
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, "the stage never wrote its worker's pid"
        time.sleep(0.02)
    return int(path.read_text())


def test_leftover_workers_carrying_the_run_id_are_killed(tmp_path: Path) -> None:
    worker_file = tmp_path / "worker.pid"
    code = ("import subprocess, time\n"
            f"w = subprocess.Popen(['sleep', '300'])\nopen({str(worker_file)!r}, 'w').write(str(w.pid))\n"
            "time.sleep(300)\n")
    backend, handle = _launch(tmp_path, code)
    worker = _read_pid(worker_file)
    assert os.getpgid(worker) == handle["pgid"] and backend.owns(handle)
    # The launcher and the stage die; the forked worker lingers in the group.
    stage = [p for p in _children(handle["pid"])]
    os.kill(handle["pid"], signal.SIGKILL)
    for pid in stage:
        if pid != worker:
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while pid_alive(handle["pid"], handle["proc_start"]):
        backend.status(handle)  # reaps the launcher
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert pid_alive(worker) and group_carries(handle["pgid"], "GOLDFISH_RUN_ID", handle["run_id"])
    assert backend.owns(handle)  # proven by the worker, not the (dead) leader
    backend.cleanup(handle)
    deadline = time.monotonic() + 20
    while pid_alive(worker):
        assert time.monotonic() < deadline, "the leftover worker survived cleanup"
        time.sleep(0.02)
    assert not backend.owns(handle)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _run_then_kill_runner_and_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, str]:
    """A running one-stage run whose runner and stage group were SIGKILLed (and are gone)."""
    env = make_env(tmp_path, monkeypatch)
    env.write([file_stage("gone")], {"gone": SLEEPER})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    run_id = started.stage_runs[0].stage_run_id
    handle = wait_state(project, run_id, {"running"})["backend_handle"]
    os.kill(_lease_pid(project, started.pipeline_run_id), signal.SIGKILL)
    os.killpg(handle["pgid"], signal.SIGKILL)
    _wait_gone(handle["pid"])
    return project, started, run_id


def test_cancel_of_a_dead_run_records_the_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project, started, run_id = _run_then_kill_runner_and_stage(tmp_path, monkeypatch)
    result = project.runs.cancel(run_id, "the test cancels a run that already died")
    assert not result.success and result.previous_state == "running" and result.state == "terminated"
    assert "had already died" in result.message and "orphaned" in result.message
    doc = project.runs.get(run_id)
    assert (doc["state"], doc["cause"]) == ("terminated", "orphaned") and not doc.get("cancel_requested")
    assert [h["to"] for h in doc["history"]][-1] == "terminated"
    wait_terminal(project, started.pipeline_run_id)


def test_readers_never_report_a_dead_run_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from goldfish.runs.dashboard import dashboard
    from goldfish.runs.inspect import inspect_run
    from goldfish.runs.logs import read_logs

    project, started, run_id = _run_then_kill_runner_and_stage(tmp_path, monkeypatch)
    assert project.runs.get(run_id)["state"] == "running"  # the raw row: nobody has noticed yet
    seen = inspect_run(project, run_id, ["dashboard", "metadata"])  # the first reader settles it
    assert read_logs(project, run_id).done
    assert seen.metadata is not None and (seen.metadata.state, seen.metadata.cause) == ("terminated", "orphaned")
    assert seen.dashboard is not None and seen.dashboard.state == "terminated"
    assert project.runs.status(started.pipeline_run_id).stage_runs[0].state == "terminated"
    assert all(a.run_id != run_id for a in dashboard(project, mark_notified=False).active)
    wait_terminal(project, started.pipeline_run_id)
