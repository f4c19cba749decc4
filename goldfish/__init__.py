"""Goldfish: ML experiments with perfect recall for a coding agent.

Kept import-light on purpose: stage code imports ``goldfish.io`` and
``goldfish.metrics`` and must not pull in the rest of Goldfish. The service
packages export their public face lazily for the same reason (``lazy_face``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__version__ = "0.1.0"


def lazy_face(package: str, faces: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``package.<module>`` only when one of its names is used.

    ``faces`` maps each public name to the module (inside ``package``) that defines it, so that
    ``import goldfish.runs.state`` from the runner does not import the whole run service.
    """

    def __getattr__(name: str) -> Any:
        module = faces.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__
