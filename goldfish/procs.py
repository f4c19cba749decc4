"""Is a process still the one we started? (pid reuse and zombies are not "alive")."""

from __future__ import annotations

import os


def proc_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):  # a zombie has ended; only its parent has not reaped it yet
        return None
    return int(fields[19])


def pid_alive(pid: int | None, start: int | None = None) -> bool:
    """True when ``pid`` runs and (when given) started at ``start`` — not a zombie, not a reused pid."""
    if not pid:
        return False
    if os.path.isdir("/proc"):
        now = proc_start_time(pid)
        if now is None:
            return False
        return start is None or now == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()


def env_carries(pid: int, key: str, value: str) -> bool:
    """True when ``pid``'s environment (as it was exec'd) holds ``key=value``; False when unreadable."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return False
    return f"{key}={value}".encode() in raw.split(b"\0")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid`` (empty without /proc)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    members = []
    for name in names:
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is None or len(fields) < 3 or fields[0] in (b"Z", b"X"):
            continue
        if int(fields[2]) == pgid:
            members.append(int(name))
    return members


def group_carries(pgid: int, key: str, value: str) -> bool:
    """True when a live member of process group ``pgid`` carries ``key=value`` in its environment.

    Proof that the group is still the one we started: the kernel does not hand out a number
    while a live process still uses it as its process group id, so a member that carries our run
    id keeps the group ours."""
    return any(env_carries(pid, key, value) for pid in group_members(pgid))
