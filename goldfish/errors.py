"""Error types. Every error carries what went wrong and how to fix it."""

from __future__ import annotations

from typing import Any


class GoldfishError(Exception):
    """Base error: ``message`` says what went wrong, ``fix`` says what to do next."""

    kind = "error"

    def __init__(self, message: str, *, fix: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.details = details or {}

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message} Fix: {self.fix}"
        return self.message


class InvalidInput(GoldfishError):
    """Bad argument or document; nothing was changed."""

    kind = "invalid_input"


class NotFound(GoldfishError):
    kind = "not_found"


class Conflict(GoldfishError):
    """The request collides with current state (already exists, mounted elsewhere, diverged)."""

    kind = "conflict"


class Blocked(GoldfishError):
    """A gate refused the action (finalization gate, review block)."""

    kind = "blocked"


class NotInitialized(GoldfishError):
    kind = "not_initialized"


class ConfigError(GoldfishError):
    kind = "config"


class StoreError(GoldfishError):
    kind = "store"


class Unavailable(GoldfishError):
    """A backend or service this request needs cannot work here (daemon down, credentials missing)."""

    kind = "backend_unavailable"


class DiskError(GoldfishError):
    """The disk refused a write (full, read-only, permission denied); not a Goldfish bug."""

    kind = "disk"
