"""A full, read-only or forbidden disk: whole-line appends, no temp files left, errors that name the
disk and the fix. The project lives on a small tmpfs mounted by the test (we run as root)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from goldfish.errors import DiskError, GoldfishError
from goldfish.fsutil import append_whole, disk_error, disk_error_from_text
from goldfish.git.cmd import GitError
from goldfish.project import Project
from tests.records_fixture import SPEC, Rows, final, new_project

DISK_MB = 48


def _mount(target: Path, *options: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)],
                          capture_output=True, check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A DISK_MB tmpfs of its own, so that filling it fills nothing else."""
    target = tmp_path / "disk"
    target.mkdir()
    done = _mount(target, f"size={DISK_MB}m")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'mount failed'}); "
                    "these tests need root and mount(8)")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(disk: Path, leave: int = 0) -> Path:
    """Take all free space on ``disk`` but ``leave`` bytes (0: every byte, until the disk refuses)."""
    filler = disk / "filler"
    with open(filler, "ab") as f:
        want = max(0, _free(disk) - leave)
        chunk = b"\0" * (1 << 20)
        while want > 0:
            try:
                want -= f.write(chunk[: min(len(chunk), want)])
                f.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    if leave == 0:  # the page cache may still hold a few bytes: take them too
        fd = os.open(filler, os.O_WRONLY | os.O_APPEND)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
    return filler


def audit_lines(project: Project) -> list[bytes]:
    return (project.store_dir / "events" / "audit.jsonl").read_bytes().split(b"\n")


def assert_whole_lines(path: Path) -> list[dict[str, object]]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the log must end at a whole line"
    return [orjson.loads(line) for line in data.splitlines() if line]  # each one parses


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp")]


def test_short_write_errors_leaves_whole_lines_and_the_next_write_works(
    disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project(disk)
    project.journal.log_thought("The first thought, written while there was room.", None, None)
    log = project.store_dir / "events" / "audit.jsonl"
    before = log.read_bytes()
    filler = fill(disk, leave=4096)
    assert 0 < _free(disk) <= 8192
    # 7,900 characters (under the 8,000 limit) of two UTF-8 bytes each: ~16 kB, more than the ≤ 8 kB
    # the disk has left (4 kB free plus the unused end of the log's last page), so the write is short.
    big = "A thought far longer than the space left on the disk: " + "é" * 7_800
    writes: list[tuple[int, int]] = []
    real_write = os.write

    def recording_write(fd: int, data: bytes | memoryview) -> int:
        written = real_write(fd, data)
        writes.append((len(data), written))
        return written

    monkeypatch.setattr(os, "write", recording_write)
    with pytest.raises(DiskError) as caught:
        project.journal.log_thought(big, None, None)
    monkeypatch.setattr(os, "write", real_write)
    assert any(0 < done < asked for asked, done in writes), writes  # the disk took part of the line
    text = str(caught.value)
    assert "is full" in text and str(disk) in text and "Free space on" in text and "retry" in text
    assert "Goldfish bug" not in text
    assert log.read_bytes() == before  # cut back to the last whole line
    assert_whole_lines(log)

    filler.unlink()
    project.journal.log_thought("The third thought, after space was freed.", None, None)
    events = assert_whole_lines(log)
    thoughts = [e["reason"] for e in events if e.get("op") == "thought"]
    assert thoughts == ["The first thought, written while there was room.", "The third thought, after space was freed."]


def test_a_torn_tail_is_cut_before_the_next_append(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"a":1}\n{"b":')
    append_whole(log, b'{"c":3}\n')
    assert log.read_bytes() == b'{"a":1}\n{"c":3}\n'


def test_finalize_run_on_a_full_disk_leaves_no_temp_file_and_works_after(disk: Path) -> None:
    project = new_project(disk)
    rows = Rows(project)
    rows.workspace("exp")
    run_id = rows.run("exp", spec=SPEC)
    filler = fill(disk)
    with pytest.raises(DiskError) as caught:
        project.records.finalize_run(run_id, final(0.66))
    assert "is full" in str(caught.value) and str(disk) in str(caught.value)
    assert temp_files(project.root) == []
    assert not (project.store_dir / "intent.json").exists()
    assert rows.get("exp", run_id).get("results_status") == "auto"  # nothing half-recorded

    filler.unlink()
    result = project.records.finalize_run(run_id, final(0.66))
    assert result.results_status == "finalized"
    assert temp_files(project.root) == []


def test_git_out_of_space_names_the_disk_not_doctor(disk: Path) -> None:
    project = new_project(disk)
    project.workspaces.create("exp", "find a good model", "a reason that is long enough")
    project.workspaces.mount("exp", "w1", "a reason that is long enough")
    slot = project.slot_path("w1")
    # Incompressible content, so that git's object write needs real space.
    (slot / "data.bin").write_bytes(os.urandom(2 << 20))
    filler = fill(disk)
    with pytest.raises(GoldfishError) as caught:
        project.workspaces.save_version("w1", "a checkpoint that cannot be written")
    text = str(caught.value)
    assert "is full" in text and "Free space on" in text and "git said" in text, text
    assert "goldfish doctor" not in text and "Goldfish bug" not in text
    filler.unlink()
    saved = project.workspaces.save_version("w1", "the same checkpoint, with room")
    assert saved.version


def test_read_only_disk_says_so(disk: Path) -> None:
    project = new_project(disk)
    project.journal.log_thought("Written before the disk went read-only.", None, None)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    try:
        with pytest.raises(DiskError) as caught:
            project.journal.log_thought("Refused: the disk is read-only now.", None, None)
        text = str(caught.value)
        assert "read-only" in text and str(disk) in text and "Remount" in text
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
    project.journal.log_thought("Written again once the disk is writable.", None, None)


def test_messages_name_the_disk_and_the_fix(tmp_path: Path) -> None:
    full = disk_error(errno.ENOSPC, tmp_path / "store" / "x.json", doing="save")
    assert "is full" in full.message and "Free space on" in (full.fix or "")
    ro = disk_error(errno.EROFS, tmp_path)
    assert "read-only" in ro.message and "Remount" in (ro.fix or "")
    denied = disk_error(errno.EACCES, tmp_path / "store")
    assert "permission denied" in denied.message and "write access" in (denied.fix or "")
    git = disk_error_from_text("fatal: unable to write file: No space left on device", tmp_path, doing="commit")
    assert git is not None and "is full" in git.message
    assert disk_error_from_text("fatal: bad object HEAD", tmp_path, doing="commit") is None


def test_git_error_is_a_goldfish_error() -> None:
    assert issubclass(GitError, GoldfishError)


def test_mcp_reports_a_raw_disk_error_as_the_disk_not_a_bug(tmp_path: Path) -> None:
    import anyio
    from mcp.server.mcpserver.exceptions import ToolError

    from mcp_server.server import GoldfishServer

    server = GoldfishServer(name="t")
    server.register_in_background(lambda: None)
    server.wait_registered()

    @server.tool()
    def boom() -> str:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs" / "x.json"))

    with pytest.raises(ToolError) as caught:
        anyio.run(server.call_tool, "boom", {})
    text = str(caught.value)
    assert "is full" in text and "Free space on" in text and "Goldfish bug" not in text


NOBODY = 65534


def test_permission_denied_names_the_user_and_the_fix() -> None:
    """As an unprivileged user on a project owned by root: the refused write says whose access is missing."""
    import shutil
    import sys
    import tempfile

    from tests.mcp_helpers import REPO

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv(1) to act as an unprivileged user")
    base = Path(tempfile.mkdtemp(prefix="goldfish-perm-"))
    try:
        base.chmod(0o755)  # others may read the project, not write it
        project = new_project(base)
        project.journal.log_thought("Written by the owner of the project.", None, None)
        for path in base.rglob("*"):  # readable by everyone, writable by root only
            path.chmod(0o755 if path.is_dir() else 0o644)
        script = (
            "import sys\n"
            "from goldfish.errors import DiskError\n"
            "from goldfish.project import Project\n"
            "try:\n"
            "    Project.open(sys.argv[1], source='test').journal.log_thought('Written by someone else.', None, None)\n"
            "except DiskError as exc:\n"
            "    print(exc)\n"
            "else:\n"
            "    print('written')\n"
        )
        done = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c", script,
             str(project.root)],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(base)},
        )
        text = done.stdout
        assert "permission denied" in text and "write access" in text, (done.stdout, done.stderr[-2000:])
        assert "Goldfish bug" not in text
        assert "Goldfish runs as nobody" in text or f"uid {NOBODY}" in text, text
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_refused_event_append_after_the_renames_is_completed_by_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import goldfish.store as store_module
    from goldfish.store import Store

    store = Store(tmp_path / "store")
    real = store_module._append_lines
    calls = {"n": 0}

    def full_once(path: Path, lines: list[str]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, lines)

    monkeypatch.setattr(store_module, "_append_lines", full_once)
    # Two partitions and an event: the intent path.
    with pytest.raises(DiskError) as caught, store.transaction() as tx:
        tx.table("things", "project").add({"a": 1}, doc_id="one")
        tx.table("things", "ws/exp").add({"b": 2}, doc_id="two")
        tx.append_event("audit", {"op": "thing"})
    assert "the change itself is saved" in str(caught.value)
    assert (store.root / "intent.json").exists()
    with store.transaction():
        pass  # the next call takes the lock and rolls the intent forward
    assert not (store.root / "intent.json").exists()
    events, _ = store.read_events("audit")
    assert [e["op"] for e in events] == ["thing"]
    assert (store.table("things", "ws/exp").get_doc("two") or {}).get("b") == 2
    assert temp_files(store.root) == []
