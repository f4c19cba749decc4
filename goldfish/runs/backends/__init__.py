"""Execution backends (DESIGN §5): one protocol (``base.Backend``), one module per backend."""

from __future__ import annotations

from goldfish.runs.backends.base import Backend, BackendContext
from goldfish.errors import ConfigError

AVAILABLE = ("local", "gce")


def get_backend(name: str, context: BackendContext | None = None) -> Backend:
    """The backend for ``jobs.backend``; ConfigError for one this installation does not have."""
    if name == "local":
        from goldfish.runs.backends.local import LocalBackend

        return LocalBackend()
    if name == "gce":
        from goldfish.runs.backends.gce import GceBackend

        return GceBackend(context or BackendContext())
    raise ConfigError(
        f"jobs.backend: {name} is not available in this Goldfish (available: {', '.join(AVAILABLE)}).",
        fix="Set jobs.backend: local in goldfish.yaml, or install the Goldfish build with that backend.",
    )
