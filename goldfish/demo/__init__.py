"""``goldfish demo``: a narrated experiment on the embedded default."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.demo.tour import run_demo

__all__ = [
    "run_demo",
]

__getattr__ = lazy_face(__name__, {
    "run_demo": "tour",
})
