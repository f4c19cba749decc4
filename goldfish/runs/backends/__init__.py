"""Execution backends (DESIGN §5): one protocol (``base.Backend``), one module per backend."""

from __future__ import annotations

from goldfish.runs.backends.base import Backend
from goldfish.errors import ConfigError

AVAILABLE = ("local",)


def get_backend(name: str) -> Backend:
    """The backend for ``jobs.backend``; ConfigError for one this installation does not have."""
    if name == "local":
        from goldfish.runs.backends.local import LocalBackend

        return LocalBackend()
    raise ConfigError(
        f"jobs.backend: {name} is not available in this Goldfish (available: {', '.join(AVAILABLE)}).",
        fix="Set jobs.backend: local in goldfish.yaml, or install the Goldfish build with that backend.",
    )
