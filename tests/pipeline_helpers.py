"""Shared material for the pipeline tests: the seed's example pipeline and a project builder."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import yaml

# The 3-stage example of the seed skill ("2. Pipeline Structure"), verbatim.
SEED_PIPELINE = """\
stages:
  - name: preprocess
    inputs:
      raw_data:
        type: dataset
        dataset: sales_v1      # Registered dataset
        schema:
          kind: tabular
          columns: ["price", "volume"]
          dtypes: {price: "float32", volume: "int64"}
    outputs:
      features:
        type: npy              # NumPy array output
        schema:                # Required contract (use null only if unknown)
          kind: tensor
          shape: [null, 768]
          dtype: float32

  - name: train
    inputs:
      features:
        type: npy
        from_stage: preprocess  # Consume from upstream
        signal: features
        schema:
          kind: tensor
          shape: [null, 768]
          dtype: float32
    outputs:
      model:
        type: directory         # Model checkpoint dir
        schema: null            # Required tag; set null if unknown

  - name: evaluate
    inputs:
      model:
        from_stage: train
        signal: model
        schema: null
      features:
        from_stage: preprocess
        signal: features
        schema:
          kind: tensor
          shape: [null, 768]
          dtype: float32
    outputs:
      metrics:
        type: csv
        schema: null
"""


def make_project(
    root: Path, pipeline: str | dict[str, Any], *, modules: bool = True, configs: dict[str, Any] | None = None
) -> Path:
    """Write pipeline.yaml (text or dict), a module for every stage, and the given stage configs."""
    root.mkdir(parents=True, exist_ok=True)
    for old in ("modules", "configs"):  # a project is rewritten whole, so earlier calls leave nothing behind
        shutil.rmtree(root / old, ignore_errors=True)
    text = pipeline if isinstance(pipeline, str) else yaml.safe_dump(pipeline, sort_keys=False)
    (root / "pipeline.yaml").write_text(text)
    if modules:
        (root / "modules").mkdir(exist_ok=True)
        data = yaml.safe_load(text)
        for stage in data.get("stages") or []:
            ext = "rs" if stage.get("runtime") == "rust" else "py"
            (root / "modules" / f"{stage['name']}.{ext}").write_text("# stage\n")
    for name, cfg in (configs or {}).items():
        (root / "configs").mkdir(exist_ok=True)
        body = cfg if isinstance(cfg, str) else yaml.safe_dump(cfg)
        (root / "configs" / f"{name}.yaml").write_text(body)
    return root


def tree_digest(root: Path) -> str:
    """Hash of every file path, content and mtime under root (to prove nothing was written)."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        h.update(str(path.relative_to(root)).encode())
        if path.is_file():
            h.update(path.read_bytes())
            h.update(str(path.stat().st_mtime_ns).encode())
    return h.hexdigest()


def issue_at(issues: list[Any], location: str) -> Any:
    """The issue (model or dict) at ``location``; fails the test with the list when absent."""
    for issue in issues:
        loc = issue["location"] if isinstance(issue, dict) else issue.location
        if loc == location:
            return issue
    raise AssertionError(f"no issue at {location!r}; got: {issues}")
