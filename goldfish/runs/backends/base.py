"""The backend protocol: how a stage process is started, watched, read, stopped and cleaned up.

The runner drives every backend through these methods only; nothing else knows whether a stage is
a local process, a container or a VM. Contract every implementation keeps:

* **Durable handles.** ``launch`` returns a JSON-serialisable handle and must have made the launch
  discoverable on disk (``find_launch``) before it returns, so that a *different* process (a new
  runner after a crash) can call ``status``/``logs``/``cancel`` with it.
* **Evidence of success.** ``status`` reports an exit code only from evidence written by the stage's
  own supervisor (an exit-code file, a container's recorded state). A process that is gone without
  such evidence is reported as ``lost`` — never as exit code 0 (lessons §6.2 #11, #12).
* **Idempotence.** ``cancel`` and ``cleanup`` may be called several times, after the stage already
  ended, or by a process that did not launch it.
* **No user input reaches a shell.** Commands are argv lists.
* **No silent backends.** ``availability`` says, cheaply and without side effects, whether this
  backend can start a stage here (daemon reachable, credentials present, GPUs when asked for). It is
  called by ``validate_config``, ``run(dry_run=True)`` and ``run()`` before anything is recorded, and
  by the runner before it prepares a stage; a refusal carries the reason and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

Handle = dict[str, Any]


class Capabilities(BaseModel):
    """What a backend can do (shown by inspect_run and used by the runner)."""

    reattach: bool = Field(description="A new runner can adopt a stage launched by a dead one")
    signals: bool = Field(description="Stop requests are delivered as SIGTERM to the whole stage")
    live_logs: bool = Field(description="Logs can be read while the stage runs")
    memory_limit: bool = Field(description="A memory cap is enforced on the stage")
    gpus: bool = Field(default=False, description="Stages can be given GPUs")
    remote: bool = Field(default=False, description="Stages run on another machine and keep their outputs in the "
                                                    "bucket (gcs.bucket); the run dir holds a synced copy of their "
                                                    "runtime files only")


@dataclass
class LaunchSpec:
    """Everything needed to start one stage process."""

    run_id: str
    run_dir: Path
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    memory_limit_mb: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.run_dir / "logs" / "stdout.log"


@dataclass(frozen=True)
class Availability:
    """Whether a backend can start stages here, and if not why and what to do."""

    ok: bool
    reason: str = ""
    fix: str = ""
    gpus: bool = False  # can give GPUs to stages (e.g. an NVIDIA runtime in the daemon)

    @classmethod
    def refused(cls, reason: str, fix: str) -> Availability:
        return cls(ok=False, reason=reason, fix=fix)

    def render(self) -> str:
        return f"{self.reason} Fix: {self.fix}" if self.fix else self.reason


class BackendUnavailable(Exception):
    """Raised by a backend operation when the backend itself cannot be reached (run cause
    ``backend_unavailable``), as opposed to the stage failing."""

    def __init__(self, availability: Availability):
        super().__init__(availability.render())
        self.availability = availability


@dataclass(frozen=True)
class Status:
    """What a backend knows about a launched stage right now."""

    alive: bool
    exit_code: int | None = None
    preempted: bool = False  # the machine was reclaimed (spot/preemptible): the attempt may be retried
    detail: str | None = None  # what the backend's own evidence says about how it ended

    @property
    def lost(self) -> bool:
        """Gone without evidence of how it ended (treated as failure, cause ``orphaned``)."""
        return not self.alive and self.exit_code is None and not self.preempted


class Objects(Protocol):
    """The object store a remote backend reads and writes (``goldfish.storage`` provides it)."""

    def uri(self, key: str = "") -> str: ...

    def get_bytes(self, key: str) -> bytes | None: ...

    def put_bytes(self, data: bytes, key: str) -> Any: ...

    def get_file(self, key: str, dest: Path, *, generation: int | None = None) -> Any: ...

    def list(self, prefix: str) -> list[Any]: ...

    def delete(self, key: str) -> bool: ...


@dataclass
class BackendContext:
    """What the runner hands a backend: its settings from goldfish.yaml and, for remote backends,
    the bucket store. Backends import nothing else of Goldfish."""

    settings: dict[str, Any] = field(default_factory=dict)
    objects: Objects | None = None


@runtime_checkable
class Backend(Protocol):
    name: str

    def capabilities(self) -> Capabilities:
        """Static facts about this backend."""
        ...

    def availability(self, *, gpus: int = 0) -> Availability:
        """Can a stage (needing ``gpus`` GPUs) start here now? Cheap, no side effects, never raises."""
        ...

    def launch(self, spec: LaunchSpec) -> Handle:
        """Start the stage and return its durable handle (see the module contract).

        Raises on failure to start; a stage that starts and then fails is reported by ``status``.
        """
        ...

    def find_launch(self, run_dir: Path) -> Handle | None:
        """The handle of a launch recorded under ``run_dir`` (for re-attach), or None."""
        ...

    def status(self, handle: Handle) -> Status:
        """Alive, ended with an exit code, or lost. Cheap: the runner calls it every poll tick."""
        ...

    def logs(self, handle: Handle, offset: int = 0, limit: int = 1 << 20) -> tuple[bytes, int]:
        """Log bytes from ``offset`` (at most ``limit``) and the offset after them."""
        ...

    def cancel(self, handle: Handle, grace_seconds: float) -> Status:
        """Ask the stage to stop (SIGTERM or equivalent), wait up to ``grace_seconds``, then force it.

        Returns the status once it is no longer alive (or the last one seen)."""
        ...

    def cleanup(self, handle: Handle) -> None:
        """Release what the launch holds (leftover processes, containers, VMs). Idempotent."""
        ...
