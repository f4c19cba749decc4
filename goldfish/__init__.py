"""Goldfish: ML experiments with perfect recall for a coding agent.

Kept import-light on purpose: stage code imports ``goldfish.io`` and
``goldfish.metrics`` and must not pull in the rest of Goldfish.
"""

__version__ = "0.1.0"
