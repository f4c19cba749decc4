"""Execution backends: one protocol (``base.Backend``), one module per backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from goldfish.runs.backends.base import Availability, Backend, BackendUnavailable

KNOWN = ("local", "docker", "gce")


def get_backend(name: str, options: Mapping[str, Any] | None = None) -> Backend:
    """The backend for ``jobs.backend``, built from plain ``options`` (see ``runs.availability``).

    Raises ``BackendUnavailable`` (with the reason and the fix) for a backend this installation
    cannot build; whether a built backend can *run* here is ``availability()``'s question."""
    opts = dict(options or {})
    if name == "local":
        from goldfish.runs.backends.local import LocalBackend

        return LocalBackend()
    if name == "docker":
        try:
            from goldfish.runs.backends.docker import DockerBackend
        except ImportError as exc:
            raise BackendUnavailable(Availability.refused(
                f"jobs.backend: docker needs the docker Python package ({exc}).",
                "pip install 'docker>=7.1,<8' into Goldfish's environment, or use jobs.backend: local.")) from None
        return DockerBackend(**opts.get("docker", {}))
    if name == "gce":
        from goldfish.runs.backends.base import BackendContext
        from goldfish.runs.backends.gce import GceBackend

        gce = opts.get("gce") or {}
        return GceBackend(BackendContext(settings=dict(gce.get("settings") or {}), objects=gce.get("objects")))
    raise BackendUnavailable(Availability.refused(
        f"jobs.backend: {name} is not a Goldfish backend (known: {', '.join(KNOWN)}).",
        "Set jobs.backend to local, docker or gce in goldfish.yaml."))


def backend_availability(name: str, options: Mapping[str, Any] | None = None, *, gpus: int = 0) -> Availability:
    """``get_backend(name).availability(gpus=…)``, with a backend that cannot be built as a refusal."""
    try:
        backend = get_backend(name, options)
    except BackendUnavailable as exc:
        return exc.availability
    return backend.availability(gpus=gpus)


__all__ = ["KNOWN", "Availability", "Backend", "BackendUnavailable", "backend_availability", "get_backend"]
