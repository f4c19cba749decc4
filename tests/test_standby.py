"""The standby runner: run() hands its pipeline run to a runner process started ahead of time.

Real processes throughout: the standby is ``python -m goldfish.runs.standby`` on a real pipe; the
tests read who drove each run from the pipeline run's ``runner`` field (written by the runner
itself) and wait for processes to exit with a deadline.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from pathlib import Path

import pytest

from goldfish.runs.standby import _Lifeline
from tests.records_fixture import final
from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, Env, file_stage, make_env, wait_terminal


def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    env = make_env(tmp_path, monkeypatch)
    env.write([file_stage("s")], {"s": WRITE_OUTPUTS})
    return env


def _gone(pid: int) -> bool:
    """Exited and reaped (or a zombie about to be): not a live process any more."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still alive after {timeout}s"
        time.sleep(0.05)


def _runner_pid(project, prun_id: str) -> int:  # type: ignore[no-untyped-def]
    doc = project.store.table("pipeline_runs", "ws/exp").require(prun_id)
    return int(doc["runner"]["pid"])


def _run(project, env: Env, value: int):  # type: ignore[no-untyped-def]
    (env.slot / "modules" / "extra.py").write_text(f"VALUE = {value}\n")  # a new version each time
    result = project.runs.run("exp", reason=REASON, results_spec=SPEC)
    done = wait_terminal(project, result.pipeline_run_id, timeout=60)
    assert done.status == "completed", done
    project.records.finalize_run(result.pipeline_run_id, final(0.9, "success"))  # opens the gate
    return result


def _two_runs(project, env: Env):  # type: ignore[no-untyped-def]
    """After one run no standby waits (a one-run process would waste it); after the second one does."""
    first = _run(project, env, 1)
    assert project.runs.standby.pids() == []
    # The first run was still driven by a standby: started when run() began, handed the run.
    assert "standby runner" in (project.runs_dir / first.pipeline_run_id / "runner.log").read_text()
    return _run(project, env, 2)


def test_run_is_driven_by_the_standby_started_before_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    project = env.open()
    first = _two_runs(project, env)
    waiting = project.runs.standby.pids()
    assert len(waiting) == 1 and waiting[0] != _runner_pid(project, first.pipeline_run_id)
    second = _run(project, env, 3)
    assert _runner_pid(project, second.pipeline_run_id) == waiting[0]
    # The stage took the files run() reviewed: no kept archive is left in the pipeline run's dir.
    assert not list((project.runs_dir / second.pipeline_run_id).glob("app-*"))
    log = (project.runs_dir / second.pipeline_run_id / "runner.log").read_text()
    assert f"(pid {waiting[0]}) drives {second.pipeline_run_id}" in log  # its output went to the run's log
    # A new standby waits for the next run; closing the service lets it exit.
    after = project.runs.standby.pids()
    assert len(after) == 1 and after[0] != waiting[0]
    project.runs.standby.close()
    _wait_gone(after[0])


def test_a_dead_standby_falls_back_to_a_spawned_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    project = env.open()
    _two_runs(project, env)
    [pid] = project.runs.standby.pids()
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    second = _run(project, env, 3)
    assert _runner_pid(project, second.pipeline_run_id) != pid
    project.runs.standby.close()


def test_standby_exits_when_its_owner_goes_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    project = env.open()
    _two_runs(project, env)
    [pid] = project.runs.standby.pids()
    del project
    gc.collect()  # Project and Runs refer to each other: the cycle collector frees them
    _wait_gone(pid)


def test_changed_environment_gets_a_fresh_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    project = env.open()
    _two_runs(project, env)
    [old] = project.runs.standby.pids()
    monkeypatch.setenv("GOLDFISH_STANDBY_TEST", "changed")
    second = _run(project, env, 3)
    assert _runner_pid(project, second.pipeline_run_id) != old  # it would carry the old environment
    _wait_gone(old)
    project.runs.standby.close()


def test_standby_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path, monkeypatch)
    env.configure(jobs={"standby_idle_seconds": 0})
    project = env.open()
    for i in (1, 2):
        result = _run(project, env, i)
        assert project.runs.standby.pids() == []
        assert "standby runner" not in (project.runs_dir / result.pipeline_run_id / "runner.log").read_text()


def test_lifeline_reads_a_job_eof_and_idle() -> None:
    r, w = os.pipe()
    try:
        pipe = _Lifeline(r)
        pipe.pump(0.05)
        assert not pipe.done and pipe.job() is None  # idle: nothing arrived
        os.write(w, b"prun-1234abcd ")
        pipe.pump(0.05)
        assert not pipe.done  # half a line is not a job
        os.write(w, b"0123456789ab\n")
        pipe.pump(5)
        assert pipe.job() == ("prun-1234abcd", "0123456789ab")
    finally:
        os.close(w)
    closed = _Lifeline(r)
    closed.pump(5)
    assert closed.eof and closed.job() is None
    os.close(r)


def test_kept_archive_is_taken_once_and_dropped(tmp_path: Path) -> None:
    from goldfish.runs.launch_review import drop_archives, keep_archive, take_archive

    sha = "a" * 40
    app, prun_dir = tmp_path / "review" / "app", tmp_path / "prun"
    (app / "modules").mkdir(parents=True)
    (app / "modules" / "s.py").write_text("print('hi')\n")
    keep_archive(app, prun_dir, sha)
    assert not app.exists()
    first, second = tmp_path / "run1" / "app", tmp_path / "run2" / "app"
    first.parent.mkdir()
    second.parent.mkdir()
    assert take_archive(prun_dir, sha, first)
    assert (first / "modules" / "s.py").read_text() == "print('hi')\n"
    assert not take_archive(prun_dir, sha, second)  # the second stage extracts the version itself
    assert not take_archive(prun_dir, "b" * 40, second) and not take_archive(None, sha, second)
    (prun_dir / f"app-{'c' * 40}" / "x").mkdir(parents=True)
    drop_archives(prun_dir)
    assert not list(prun_dir.glob("app-*"))


def test_idle_standby_exits_after_its_idle_time(tmp_path: Path) -> None:
    """The standby's own deadline: it exits after ``--idle`` seconds even while the pipe stays open."""
    import subprocess
    import sys

    from goldfish.init import init_project

    root = init_project(tmp_path / "proj", "proj").project_root
    r, w = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "goldfish.runs.standby", "--project", str(root),
                                 "--fd", str(r), "--idle", "1"], pass_fds=(r,),
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
        os.close(r)
        assert proc.wait(timeout=120) == 0
    finally:
        os.close(w)


def test_standby_exits_when_its_owner_process_dies(tmp_path: Path) -> None:
    """The owner dies without closing anything: the kernel closes the pipe and the standby leaves."""
    import subprocess
    import sys

    from goldfish.init import init_project

    root = init_project(tmp_path / "proj", "proj").project_root
    owner = ("import os, sys\nfrom goldfish.project import Project\n"
             "standby = Project.open(sys.argv[1]).runs.standby\nstandby.ensure()\n"
             "print(standby.pids()[0], flush=True)\nos._exit(0)\n")
    out = subprocess.run([sys.executable, "-c", owner, str(root)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert out.returncode == 0, out.stderr
    _wait_gone(int(out.stdout.strip()), timeout=60)
