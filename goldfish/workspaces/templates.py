"""Starter files for ``create_workspace(template=...)``: a pipeline that validates and runs as is.

``minimal``: one stage (``train``) that fits a line to synthetic data, logs ``val_loss`` per epoch and
saves the fitted weights. ``two-stage``: ``prepare`` makes the data, ``train`` reads it through
``from_stage`` inputs. ``none``: an empty workspace. Numpy only, so they run on any backend image.
"""

from __future__ import annotations

from typing import Literal

Template = Literal["minimal", "two-stage", "none"]
TEMPLATES: tuple[Template, ...] = ("minimal", "two-stage", "none")

_TRAIN_CONFIG = """\
# Stage config: read in modules/train.py with get_config(); `compute` says where and how it runs.
compute:
  profile: cpu-small        # runs on every backend: locally its vCPUs and memory are the limits
  max_runtime_seconds: 600
learning_rate: 0.1
epochs: 50
seed: 0
"""

_FIT = '''
def fit(x: np.ndarray, y: np.ndarray, cfg: dict) -> np.ndarray:
    """Gradient descent on the mean squared error of y ~ w * x + b; logs one point per epoch."""
    split = int(len(x) * 0.8)  # the last 20% of the rows are the validation split
    params = np.zeros(2)
    features = np.stack([x, np.ones_like(x)], axis=1)
    for epoch in range(int(cfg["epochs"])):
        err = features[:split] @ params - y[:split]
        params -= float(cfg["learning_rate"]) * 2 * features[:split].T @ err / split
        val_loss = float(np.mean((features[split:] @ params - y[split:]) ** 2))
        log_metric("train_loss", float(np.mean(err**2)), step=epoch)
        log_metric("val_loss", val_loss, step=epoch)
        heartbeat(f"epoch {epoch}")
        if should_stop():
            break
    runtime_log(f"fitted w={params[0]:.3f} b={params[1]:.3f}, val_loss={val_loss:.5f}")
    return params
'''

_MINIMAL_PIPELINE = """\
# One stage. Add stages below it; an input `from_stage: train` reads this stage's outputs.
stages:
  - name: train
    outputs:
      weights:                 # written with save_output("weights", array) in modules/train.py
        type: npy
        schema: {kind: tensor, shape: [2], dtype: float64}
"""

_MINIMAL_TRAIN = '''\
"""Fit y = w * x + b to synthetic data: a starting point to replace with your own model."""

import numpy as np
from goldfish.io import get_config, heartbeat, runtime_log, save_output, should_stop
from goldfish.metrics import log_metric
''' + _FIT + '''

def main() -> None:
    cfg = get_config()
    rng = np.random.default_rng(int(cfg["seed"]))
    x = rng.uniform(-1.0, 1.0, size=500)
    y = 2.0 * x + 0.5 + 0.05 * rng.normal(size=500)
    save_output("weights", fit(x, y, cfg))
'''

_TWO_STAGE_PIPELINE = """\
# Two stages joined by signals: train's inputs name prepare's outputs with from_stage.
stages:
  - name: prepare
    outputs:
      x:
        type: npy
        schema: {kind: tensor, shape: [null], dtype: float64}
      y:
        type: npy
        schema: {kind: tensor, shape: [null], dtype: float64}

  - name: train
    inputs:
      x:
        from_stage: prepare
        schema: {kind: tensor, shape: [null], dtype: float64}
      y:
        from_stage: prepare
        schema: {kind: tensor, shape: [null], dtype: float64}
    outputs:
      weights:
        type: npy
        schema: {kind: tensor, shape: [2], dtype: float64}
"""

_PREPARE_CONFIG = """\
compute:
  profile: cpu-small
rows: 500
noise: 0.05
seed: 0
"""

_PREPARE = '''\
"""Make a synthetic regression data set: y = 2x + 0.5 plus noise. Replace with loading your data."""

import numpy as np
from goldfish.io import get_config, save_output
from goldfish.metrics import log_metric


def main() -> None:
    cfg = get_config()
    rng = np.random.default_rng(int(cfg["seed"]))
    x = rng.uniform(-1.0, 1.0, size=int(cfg["rows"]))
    y = 2.0 * x + 0.5 + float(cfg["noise"]) * rng.normal(size=len(x))
    save_output("x", x)
    save_output("y", y)
    log_metric("data/rows", len(x))
'''

_TWO_STAGE_TRAIN = '''\
"""Fit y = w * x + b to the rows prepared by the prepare stage."""

import numpy as np
from goldfish.io import get_config, heartbeat, load_input, runtime_log, save_output, should_stop
from goldfish.metrics import log_metric
''' + _FIT + '''

def main() -> None:
    cfg = get_config()
    x, y = np.asarray(load_input("x")), np.asarray(load_input("y"))
    save_output("weights", fit(x, y, cfg))
'''

_FILES: dict[Template, dict[str, str]] = {
    "minimal": {
        "pipeline.yaml": _MINIMAL_PIPELINE,
        "configs/train.yaml": _TRAIN_CONFIG,
        "modules/train.py": _MINIMAL_TRAIN,
    },
    "two-stage": {
        "pipeline.yaml": _TWO_STAGE_PIPELINE,
        "configs/prepare.yaml": _PREPARE_CONFIG,
        "configs/train.yaml": _TRAIN_CONFIG,
        "modules/prepare.py": _PREPARE,
        "modules/train.py": _TWO_STAGE_TRAIN,
    },
    "none": {},
}

# What run(results_spec=...) can say about the scaffold's metric (shown in create_workspace's result).
EXAMPLE_SPEC = {
    "primary_metric": "val_loss", "direction": "minimize", "min_value": 0.01, "goal_value": 0.003,
    "dataset_split": "val", "tolerance": 0.0005,
    "context": "Line fit on synthetic data: mean squared error on the last 20% of the rows.",
}


def template_files(template: Template) -> dict[str, str]:
    """Relative path → text of the template's files."""
    return dict(_FILES[template])
