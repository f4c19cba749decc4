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
