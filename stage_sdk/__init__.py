"""Code that runs inside a stage; stage code uses it as ``goldfish.io`` and ``goldfish.metrics``.

Depends on numpy only (pandas when importable) and imports nothing else of Goldfish. See
docs/stage-sdk.md.
"""
