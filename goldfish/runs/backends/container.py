"""The container a stage runs in: layout, environment, labels and limits, in one place.

The docker backend runs this spec on the local daemon; the gce backend runs the same project
image with the same spec on a VM, so a stage sees one layout everywhere:

* ``/app`` — the version's ``modules/``, ``configs/``, ``entrypoints/`` (read-only);
* ``/mnt/inputs/<name>`` — each resolved input, read-only;
* ``/mnt/outputs`` — the stage's outputs (with ``.goldfish/`` for metrics, heartbeat, stop requests);
* ``/mnt/objects`` — the project's object store (checkpoints, artifacts), when it is local;
* ``/opt/goldfish/sdk`` — ``goldfish.io`` / ``goldfish.metrics`` (baked into the project image).

Labels carry the run ids so a new runner can find its container (``LABEL_RUN``) and prove that a
container is the one it launched before stopping it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

APP_DIR = "/app"
INPUTS_DIR = "/mnt/inputs"
OUTPUTS_DIR = "/mnt/outputs"
OBJECTS_DIR = "/mnt/objects"
SDK_DIR = "/opt/goldfish/sdk"
APP_PARTS = ("modules", "configs", "entrypoints")

LABEL_PREFIX = "dev.goldfish."
LABEL_MANAGED = LABEL_PREFIX + "managed"
LABEL_RUN = LABEL_PREFIX + "run_id"
LABEL_PIPELINE_RUN = LABEL_PREFIX + "pipeline_run_id"
LABEL_WORKSPACE = LABEL_PREFIX + "workspace"
LABEL_STAGE = LABEL_PREFIX + "stage"
LABEL_PROJECT = LABEL_PREFIX + "project"
LABEL_LAUNCH = LABEL_PREFIX + "launch_id"

_NAME_RE = re.compile(r"[^a-zA-Z0-9_.-]")


@dataclass(frozen=True)
class Mount:
    source: str  # absolute host path (docker) or VM path (gce)
    target: str
    read_only: bool = True


@dataclass
class ContainerSpec:
    """Everything needed to create one stage container (JSON-serialisable via ``to_dict``)."""

    name: str
    image: str
    command: list[str]
    env: dict[str, str]
    mounts: list[Mount]
    labels: dict[str, str]
    working_dir: str = APP_DIR
    user: str | None = None
    network: Literal["none", "bridge"] = "none"
    memory_mb: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    gpus: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerSpec:
        values = dict(data)
        values["mounts"] = [Mount(**m) for m in values.get("mounts") or []]
        return cls(**values)


def container_name(run_id: str, launch_id: str) -> str:
    """Unique per launch: a relaunch after a lost launch never collides with the old container."""
    return _NAME_RE.sub("-", f"goldfish-{run_id}-{launch_id}")[:120]


def stage_command(runtime: Literal["python", "rust"], stage: str, entrypoint: str | None = None) -> list[str]:
    """What the container runs: the Python bootstrap (``python`` is the image's venv) or the binary."""
    if runtime == "rust":
        return [f"{APP_DIR}/{entrypoint or f'entrypoints/{stage}'}"]
    return ["python", "-u", "-m", "stage_sdk._bootstrap", f"{APP_DIR}/modules/{stage}.py"]


def build_spec(
    *,
    image: str,
    command: list[str],
    env: dict[str, str],
    app_dir: str,
    outputs_dir: str,
    inputs: dict[str, str],
    objects_dir: str | None,
    run_id: str,
    launch_id: str,
    pipeline_run_id: str,
    workspace: str,
    stage: str,
    project: str,
    network: Literal["none", "bridge"] = "none",
    memory_mb: int | None = None,
    cpus: float | None = None,
    pids_limit: int | None = None,
    gpus: int = 0,
    user: str | None = None,
) -> ContainerSpec:
    """The stage container. ``app_dir``/``outputs_dir``/``inputs``/``objects_dir`` are paths where the
    container runs (the host for docker, the VM for gce); ``env`` is the stage environment already
    written with the in-container paths (``env_paths``)."""
    mounts = [Mount(f"{app_dir}/{part}", f"{APP_DIR}/{part}", read_only=True) for part in APP_PARTS]
    mounts.append(Mount(outputs_dir, OUTPUTS_DIR, read_only=False))
    mounts += [Mount(src, f"{INPUTS_DIR}/{name}", read_only=True) for name, src in sorted(inputs.items())]
    if objects_dir:
        mounts.append(Mount(objects_dir, OBJECTS_DIR, read_only=False))
    labels = {
        LABEL_MANAGED: "1",
        LABEL_RUN: run_id,
        LABEL_LAUNCH: launch_id,
        LABEL_PIPELINE_RUN: pipeline_run_id,
        LABEL_WORKSPACE: workspace,
        LABEL_STAGE: stage,
        LABEL_PROJECT: project,
    }
    return ContainerSpec(
        name=container_name(run_id, launch_id), image=image, command=command, env=dict(env), mounts=mounts,
        labels=labels, user=user, network=network, memory_mb=memory_mb, cpus=cpus, pids_limit=pids_limit,
        gpus=gpus,
    )


def env_paths(objects: bool) -> dict[str, str]:
    """The in-container values of the path variables of the stage environment."""
    paths = {
        "GOLDFISH_INPUTS_DIR": INPUTS_DIR,
        "GOLDFISH_OUTPUTS_DIR": OUTPUTS_DIR,
        "PYTHONPATH": f"{APP_DIR}:{APP_DIR}/modules:{SDK_DIR}",
        "HOME": "/tmp",
    }
    if objects:
        paths["GOLDFISH_OBJECTS_DIR"] = OBJECTS_DIR
    return paths
