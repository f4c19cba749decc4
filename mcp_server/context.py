"""Server-side state shared by every tool: the open project (or why there is none)."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from goldfish.errors import GoldfishError, NotInitialized
from goldfish.project import Project
from mcp_server.budget import clip_text

if TYPE_CHECKING:
    from goldfish.runs.reconciler import ReconcileTimer
    from goldfish.workspaces.watcher import SlotWatcher

F = TypeVar("F", bound=Callable[..., Any])


class ServerContext:
    """Holds the project this server serves; opened lazily, re-opened by initialize/reload."""

    def __init__(self, project_arg: str | None, start: Path | None = None):
        self.project_arg = project_arg
        self.start = start
        self._project: Project | None = None
        self._lock = threading.Lock()
        self.open_error: GoldfishError | None = None
        self._watching = False
        self.watcher: SlotWatcher | None = None
        self.reconciler: ReconcileTimer | None = None
        self.log_role: str | None = None  # set by `goldfish serve`: records go to .goldfish/logs/<role>.jsonl

    def try_open(self) -> Project | None:
        with self._lock:
            if self._project is None:
                try:
                    self._project = Project.open(self.project_arg, start=self.start, source="mcp")
                    self.open_error = None
                    if self.log_role:
                        from goldfish.logsearch.jsonlog import configure_project

                        configure_project(self._project, self.log_role)
                    from goldfish.runs.reconciler import reconcile_quietly

                    reconcile_quietly(self._project)
                except GoldfishError as exc:
                    self.open_error = exc
            if self._project is not None:
                self._ensure_watcher(self._project)
                self._ensure_reconciler(self._project)
            return self._project

    # The slot watcher runs while the server is up (between start_watching and stop_watching)
    # and a project is open, so status() reads dirty state instead of hashing every slot.
    def start_watching(self) -> None:
        self._watching = True
        self.try_open()

    def stop_watching(self) -> None:
        with self._lock:
            self._watching = False
            watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()
        with self._lock:
            timer, self.reconciler = self.reconciler, None
        if timer is not None:
            timer.stop()

    # Reconcile every lease interval while the server is up: a run whose runner died is settled
    # even when no other process ever opens the project.
    def _ensure_reconciler(self, project: Project) -> None:
        if not self._watching or (self.reconciler is not None and self.reconciler.project is project):
            return
        from goldfish.runs.reconciler import ReconcileTimer

        if self.reconciler is not None:
            self.reconciler.stop()
        self.reconciler = ReconcileTimer(project)
        self.reconciler.start()

    def _ensure_watcher(self, project: Project) -> None:
        if not self._watching:
            return
        if self.watcher is not None and self.watcher.project is project:
            if not self.watcher.running:  # it died (it restarts its notifier itself; this covers the thread)
                self.watcher.start(wait=0)
            return
        from goldfish.workspaces.watcher import SlotWatcher

        if self.watcher is not None:
            self.watcher.stop()
        self.watcher = SlotWatcher(project)
        self.watcher.start(wait=0)

    def project(self) -> Project:
        """The open project, or a ToolError telling the agent how to initialize one."""
        project = self.try_open()
        if project is None:
            exc = self.open_error or NotInitialized("No Goldfish project is open.")
            if isinstance(exc, NotInitialized):
                raise ToolError(
                    f"{exc.message} Call initialize_project(project_name, project_root) to create one, "
                    "then retry."
                )
            raise ToolError(str(exc))
        return project

    def set_project(self, project: Project) -> None:
        with self._lock:
            self._project = project
            self.open_error = None
            self._ensure_watcher(project)
            self._ensure_reconciler(project)


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn a GoldfishError into a ToolError: in mcp 2.x only ToolError text reaches the model."""
    try:
        yield
    except GoldfishError as exc:
        raise ToolError(str(exc)) from exc


def bounded(result: Any) -> Any:
    """Every tool answer stays under the result budget, however long a stored text is."""
    return clip_text(result) if isinstance(result, BaseModel) else result


def guarded(fn: F) -> F:
    """Decorator form of :func:`tool_errors` (and :func:`bounded`) that keeps the signature MCP introspects."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with tool_errors():
                return bounded(await fn(*args, **kwargs))

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with tool_errors():
            return bounded(fn(*args, **kwargs))

    return wrapper  # type: ignore[return-value]
