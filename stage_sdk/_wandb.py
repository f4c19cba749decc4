"""Optional Weights & Biases mirror (``GOLDFISH_METRICS_BACKEND=wandb``).

The JSONL file stays the source of truth; the mirror is best effort. wandb is imported on first
use; when it is missing or fails, that is noted once in the logs and every error is kept for
``get_backend_errors()``, never raised.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

MAX_ERRORS = 100


class WandbMirror:
    def __init__(self, note: Callable[[str], None]):
        self._note = note
        self._run: Any = None
        self._wandb: Any = None
        self._disabled = False
        self.errors: list[str] = []

    def _error(self, what: str, exc: BaseException) -> None:
        msg = f"wandb {what} failed: {type(exc).__name__}: {exc}"
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(msg)
        if len(self.errors) == 1:
            self._note(f"goldfish.metrics: {msg} (further wandb errors are counted in get_backend_errors()).")

    def _ensure(self) -> bool:
        if self._run is not None:
            return True
        if self._disabled:
            return False
        self._disabled = True  # until init succeeds, so a failing init is attempted once
        try:
            import wandb
        except ImportError:
            self._note("goldfish.metrics: GOLDFISH_METRICS_BACKEND=wandb but wandb is not installed; "
                       "metrics go to metrics.jsonl only. Fix: add wandb to requirements.txt.")
            return False
        workspace = os.environ.get("GOLDFISH_WORKSPACE") or "default"
        try:
            self._run = wandb.init(
                project=os.environ.get("GOLDFISH_WANDB_PROJECT") or f"goldfish-{workspace}",
                entity=os.environ.get("GOLDFISH_WANDB_ENTITY") or None,
                group=os.environ.get("GOLDFISH_WANDB_GROUP") or os.environ.get("GOLDFISH_PIPELINE_RUN_ID") or None,
                name=os.environ.get("GOLDFISH_RUN_ID") or None,
                reinit=True,
            )
        except Exception as exc:
            self._error("init", exc)
            return False
        self._wandb = wandb
        self._disabled = False
        return True

    def log(self, name: str, value: float, step: int | None) -> None:
        if not self._ensure():
            return
        try:
            if step is None:
                self._run.log({name: value})
            else:
                self._run.log({name: value}, step=step)
        except Exception as exc:
            self._error("log", exc)

    def log_artifact(self, name: str, path: str) -> str | None:
        if not self._ensure():
            return None
        try:
            artifact = self._wandb.Artifact(name.replace("/", "-").replace(":", "-"), type="goldfish-output")
            if os.path.isdir(path):
                artifact.add_dir(path)
            else:
                artifact.add_file(path)
            self._run.log_artifact(artifact)
            url = getattr(self._run, "url", None)
            return f"{url}/artifacts" if url else None
        except Exception as exc:
            self._error("log_artifact", exc)
            return None

    def finish(self) -> str | None:
        if self._run is None:
            return None
        run, self._run = self._run, None
        self._disabled = True  # a finished mirror stays finished; JSONL logging continues
        try:
            url = getattr(run, "url", None)
            run.finish()
            return str(url) if url else None
        except Exception as exc:
            self._error("finish", exc)
            return None
