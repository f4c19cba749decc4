"""Automatic backups: an ``event`` backup after a high-value operation (rate-limited), ``daily`` and
``weekly`` ones when due, taken by whichever Goldfish process commits first once they are due.

They run on a background thread after the transaction that triggered them is durable, so they never
slow or fail that operation; an error is logged (logger ``goldfish.backups``) and shown by
get_backup_status(), never raised. ``backups.auto: false`` in goldfish.yaml turns them off.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from goldfish.backups.models import Tier
import contextlib

if TYPE_CHECKING:
    from goldfish.project import Project
    from goldfish.store import Transaction

log = logging.getLogger("goldfish.backups")
HIGH_VALUE = ("create_workspace", "save_version", "finalize_run", "tag_record", "register_source")
_MARKERS = tuple(f'"op":"{op}"' for op in HIGH_VALUE)
_running: dict[str, threading.Thread] = {}
_pending: dict[str, tuple[Tier, str]] = {}
_active: set[str] = set()  # projects whose backup loop runs (guarded by _guard)
_guard = threading.Lock()


def due_tier(state: dict[str, Any], now: datetime) -> Tier | None:
    """``weekly`` when no weekly backup was taken this ISO week, else ``daily`` when none today."""
    week = f"{now.isocalendar()[0]}-W{now.isocalendar()[1]:02d}"
    if state.get("last_weekly") != week:
        return "weekly"
    if state.get("last_daily") != now.date().isoformat():
        return "daily"
    return None


def after_operation(project: Project, tx: Transaction) -> None:
    """Commit hook: start an automatic backup when one is due. Never raises."""
    try:
        _maybe_start(project, tx)
    except Exception as exc:  # a backup problem must never fail the operation that committed
        log.warning("automatic backup not started: %s", exc)


def _maybe_start(project: Project, tx: Transaction) -> None:
    cfg = project.config.backups
    if not cfg.auto:
        return
    audit = tx._events.get("audit") or []
    if not audit:
        return
    from goldfish.backups.service import Backups

    now = datetime.now(UTC)
    state = Backups(project).state()
    tier = due_tier(state, now)
    ops = [m.split('"')[-2] for line in audit for m in _MARKERS if m in line]
    trigger: str = ops[0] if ops else (tier or "")
    if tier is None:
        if not ops:
            return
        last = state.get("last_event_at")
        if last and (now - datetime.fromisoformat(last)).total_seconds() < cfg.event_min_interval_seconds:
            return
        tier = "event"
    key = str(project.gf_dir)
    with _guard:
        # Stamped now, in the committing thread, so the next commit sees it is not due any more.
        Backups(project)._save_state(**_stamp(tier, now))
        if key in _active:
            # Its snapshot may predate this commit: one more backup runs when it finishes.
            _pending[key] = (tier, trigger)
            return
        _active.add(key)
        thread = threading.Thread(target=_loop, args=(project, key, tier, trigger, now),
                                  name=f"goldfish-backup-{tier}")
        _running[key] = thread
        # Not a daemon: a short-lived process finishes its backup before exiting instead of leaving half.
        thread.start()


def _stamp(tier: Tier, now: datetime) -> dict[str, Any]:
    if tier == "event":
        return {"last_event_at": now.isoformat()}
    daily = {"last_daily": now.date().isoformat()}
    return {**daily, "last_weekly": f"{now.isocalendar()[0]}-W{now.isocalendar()[1]:02d}"} if tier == "weekly" else daily


def _loop(project: Project, key: str, tier: Tier, trigger: str, now: datetime) -> None:
    while True:
        _run(project, tier, trigger, now)
        with _guard:
            follow = _pending.pop(key, None)
            if follow is None:
                _active.discard(key)
                return
        tier, trigger = follow
        now = datetime.now(UTC)


def _run(project: Project, tier: Tier, trigger: str, now: datetime) -> None:
    from goldfish.backups.service import Backups

    backups = Backups(project)
    try:
        backups.create(tier=tier, trigger=trigger)
        backups._save_state(last_auto_error=None)
    except Exception as exc:
        log.warning("automatic %s backup failed: %s", tier, exc)
        with contextlib.suppress(OSError):
            backups._save_state(last_auto_error=f"{now.isoformat()} {tier}: {exc}")


def wait_idle(project: Project, timeout: float = 120.0) -> bool:
    """Wait for this process's automatic backup of ``project`` to finish (tests, shutdown)."""
    thread = _running.get(str(project.gf_dir))
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()
