"""Live dirty detection: a thread watching ``workspaces/*`` that keeps each mount row's
``dirty``/``changed_files`` current, so ``status()`` and the dashboard read instead of hashing.

While it runs it rewrites ``<dev>/.goldfish/watcher.json`` (pid, time) every couple of
seconds; other processes trust the mount rows only while that file is fresh and its pid alive,
and fall back to hashing otherwise. Events under ignored paths (per the slot's .gitignore, via
the same rules the dirty check uses) and Goldfish's own files are filtered out.

A file whose name is not valid UTF-8 makes the notifier fail its whole batch; the watcher then
records the name (``skipped`` in the liveness file, shown by status()), restarts the notifier and
recomputes every slot, so one bad name never stops live dirty detection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from goldfish.fsutil import atomic_write
from goldfish.procs import pid_alive

if TYPE_CHECKING:
    from goldfish.project import Project

log = logging.getLogger(__name__)

LIVENESS_FILE = "watcher.json"
HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 10.0
RESTART_PAUSE_SECONDS = 0.5
MAX_SKIPPED = 50
_UNDECODABLE = re.compile(r'Unable to decode path "(.*)" to string')


def liveness_path(project: Project) -> Path:
    return project.gf_dir / LIVENESS_FILE


def watcher_alive(project: Project) -> bool:
    """True when some process's watcher wrote its heartbeat recently and is still running."""
    try:
        data = orjson.loads(liveness_path(project).read_bytes())
        ts, pid, host = float(data["ts"]), int(data["pid"]), data.get("host")
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return False
    if time.time() - ts > STALE_SECONDS:
        return False
    if host != socket.gethostname():
        return True  # a shared filesystem: the fresh heartbeat is all we can check
    return pid_alive(pid)


def skipped_names(project: Project) -> list[str]:
    """Slot files the live watcher had to skip (names that are not valid UTF-8), as escaped text."""
    try:
        data = orjson.loads(liveness_path(project).read_bytes())
        skipped = data.get("skipped") or []
    except (OSError, ValueError, AttributeError, orjson.JSONDecodeError):
        return []
    return [str(s) for s in skipped if isinstance(s, str)][:MAX_SKIPPED]


class SlotWatcher:
    """Start with ``start()``, stop with ``stop()`` (idempotent; safe from any thread)."""

    def __init__(self, project: Project, *, debounce_ms: int = 50, step_ms: int = 10):
        self.project = project
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat = 0.0
        self.refreshes = 0  # slots recomputed (for tests and benchmarks)
        self.restarts = 0  # notifier restarts after an error
        self.skipped: list[str] = []  # undecodable file names seen (escaped), oldest first
        self._live = False
        self._beat_failed = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, wait: float = 5.0) -> None:
        """Start watching; returns once events are being received (or after ``wait`` seconds)."""
        if self.running:
            return
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="goldfish-watcher", daemon=True)
        self._thread.start()
        self._ready.wait(wait)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        try:
            self.project.workspaces_dir.mkdir(parents=True, exist_ok=True)
            failures = 0
            while not self._stop.is_set():
                self._live = False
                try:
                    self._watch()
                    return  # stopped
                except Exception as exc:
                    self._note_failure(exc)
                    self.restarts += 1
                    # A notifier that keeps failing before it delivers anything backs off (up to 30 s).
                    failures = 0 if self._live else failures + 1
                    self._stop.wait(min(30.0, RESTART_PAUSE_SECONDS * 2 ** failures))
        except Exception:
            log.exception("the slot watcher stopped")
        finally:
            self._clear()
            self._ready.set()

    def _watch(self) -> None:
        from watchfiles import watch

        started = False
        for changes in watch(
            self.project.workspaces_dir, watch_filter=self._relevant, debounce=self.debounce_ms,
            step=self.step_ms, stop_event=self._stop, rust_timeout=500, yield_on_timeout=True,
            raise_interrupt=False,
        ):
            if not started:
                # The notifier is live from the first yield on: whatever changed before that
                # (or while a failed notifier restarted) is covered by one full pass.
                started = self._live = True
                self._beat()
                self._refresh_all()
                self._ready.set()
            for slot in sorted({s for _c, p in changes if (s := self._slot_of(p)) is not None}):
                self._refresh(slot)
            if time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
                self._beat()

    def _note_failure(self, exc: Exception) -> None:
        found = _UNDECODABLE.search(str(exc))
        if found is None:
            log.exception("the slot watcher failed; restarting it")
            return
        name = found.group(1)
        with contextlib.suppress(ValueError):
            name = str(Path(name).relative_to(self.project.workspaces_dir))
        if name not in self.skipped:
            log.warning("skipping %s: its name is not valid UTF-8", name)
            self.skipped = [*self.skipped, name][-MAX_SKIPPED:]
            self._beat()

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        body = {"pid": os.getpid(), "ts": time.time(), "host": socket.gethostname(), "source": self.project.source,
                "skipped": self.skipped}
        try:
            atomic_write(liveness_path(self.project), orjson.dumps(body), durable=False)
        except OSError as exc:  # a full or read-only disk: the heartbeat goes stale, readers fall back to hashing
            if not self._beat_failed:  # once, not every beat
                log.warning("could not write the watcher heartbeat: %s", exc)
            self._beat_failed = True
        else:
            self._beat_failed = False

    def _clear(self) -> None:
        path = liveness_path(self.project)
        with contextlib.suppress(OSError, orjson.JSONDecodeError, TypeError):
            data: Any = orjson.loads(path.read_bytes())
            if data.get("pid") == os.getpid():
                path.unlink()

    def _refresh_all(self) -> None:
        for slot in self.project.store.table("mounts").ids():
            self._refresh(slot)

    def _refresh(self, slot: str) -> None:
        try:
            self.project.dirty.refresh(slot)
            self.refreshes += 1
        except Exception:
            log.exception("dirty check of slot %s failed", slot)

    # ----------------------------------------------------------------- filters
    def _slot_of(self, path: str) -> str | None:
        try:
            rel = Path(path).relative_to(self.project.workspaces_dir)
        except ValueError:
            return None
        parts = rel.parts
        if not parts or parts[0] not in self.project.config.slots:
            return None
        slot = parts[0]
        if len(parts) == 1 or parts[-1] == ".gitignore":
            return slot
        if self.project.dirty.rules(slot).path_ignored("/".join(parts[1:])):
            return None
        return slot

    def _relevant(self, _change: Any, path: str) -> bool:
        return self._slot_of(path) is not None
