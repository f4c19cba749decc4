"""Compute profiles: named machine shapes a stage asks for with ``compute.profile``.

Built in: ``local`` (this machine) and the GCE shapes ``cpu-small``, ``cpu-large``, ``h100-spot``,
``h100-on-demand``, ``a100-spot`` and ``a100-on-demand``. ``gce.profile_overrides`` in goldfish.yaml
deep-merges into them or defines new ones.

Which profile runs where:
- ``local``/``docker`` backends run ``local`` and the CPU profiles. A CPU profile's vcpus and memory
  become the run's limits, capped to what this machine has (``local_limits``), so a config written
  for ``cpu-small`` runs unchanged on a laptop. GPU profiles are refused on local (no GPU to give);
  on docker they run when the daemon has an NVIDIA runtime, which the backend's availability check
  decides (runs/availability.py), not this module.
- ``gce`` runs every profile except ``local`` (which describes this machine, not a VM).
- No profile: ``local`` on local/docker; ``cpu-small`` on gce, with a warning (``default_profile``).
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator

from goldfish.errors import InvalidInput
from goldfish.issues import Issue, issues_error
from goldfish.names import did_you_mean

Backend = Literal["local", "docker", "gce"]
BACKENDS: tuple[str, ...] = ("local", "docker", "gce")

# vcpus, memory_gb of the GCE machine types the built-in profiles use.
MACHINE_TYPES: dict[str, tuple[int, float]] = {
    "n2-standard-4": (4, 16),
    "c4-highcpu-192": (192, 384),
    "a3-highgpu-1g": (26, 234),
    "a3-highgpu-8g": (208, 1872),
    "a2-highgpu-1g": (12, 85),
}
# Short GPU names accepted in overrides (`gpu: {type: h100}`) → GCE accelerator types.
GPU_ALIASES = {
    "h100": "nvidia-h100-80gb",
    "a100": "nvidia-tesla-a100",
    "l4": "nvidia-l4",
    "t4": "nvidia-tesla-t4",
    "v100": "nvidia-tesla-v100",
}
_ZONE_RE = re.compile(r"[a-z]+(?:-[a-z0-9]+)+-[a-z]", re.ASCII)


class GpuSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accelerator: str = Field(min_length=1, description="GCE accelerator type, e.g. nvidia-h100-80gb")
    count: StrictInt = Field(ge=1, description="GPUs per machine")


class DiskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, description="GCE disk type, e.g. pd-balanced, hyperdisk-balanced")
    size_gb: StrictInt = Field(gt=0, description="Size in GB")


class Profile(BaseModel):
    """A machine shape."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Profile name")
    machine_type: str = Field(min_length=1, description="GCE machine type, or 'local' for this machine")
    vcpus: StrictInt | None = Field(
        default=None, gt=0, description="Virtual CPUs (None: unknown machine type)"
    )
    memory_gb: float | None = Field(
        default=None, gt=0, description="Memory in GB (None: unknown machine type)"
    )
    gpu: GpuSpec | None = Field(default=None, description="GPUs, or None for a CPU machine")
    preemptible_allowed: StrictBool = Field(default=True, description="May run on spot/preemptible capacity")
    on_demand_allowed: StrictBool = Field(default=True, description="May run on on-demand capacity")
    boot_disk: DiskSpec | None = Field(default=None, description="Boot disk (None for local)")
    data_disk: DiskSpec | None = Field(default=None, description="Optional data disk")
    boot_image: str = Field(default="debian-12", description="VM boot image family")
    zones: list[str] = Field(default_factory=list, description="Zones to try, in order")
    launch_timeout_seconds: StrictInt | None = Field(
        default=None, gt=0, description="Launch timeout override"
    )
    builtin: StrictBool = Field(default=False, description="A built-in profile (possibly overridden)")
    fallbacks: list[str] = Field(
        default_factory=list,
        description="Other GCE profiles a capacity search may use when this one has none (tried in "
                    "gce.gpu_preference order)",
    )

    @field_validator("zones")
    @classmethod
    def _zones(cls, value: list[str]) -> list[str]:
        for zone in value:
            if not _ZONE_RE.fullmatch(zone):
                raise ValueError(f"{zone!r} is not a GCE zone name (e.g. us-central1-a)")
        return value

    @property
    def gpu_count(self) -> int:
        return self.gpu.count if self.gpu else 0

    @property
    def image_kind(self) -> Literal["cpu", "gpu"]:
        """Which base image the profile needs (goldfish-base-cpu or goldfish-base-gpu)."""
        return "gpu" if self.gpu_count else "cpu"


def machine_vcpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):
        return 4.0


_CENTRAL = ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]
_H100_SPOT_ZONES = [
    *_CENTRAL,
    "us-east1-b",
    "us-east1-c",
    "us-west1-a",
    "us-west1-b",
    "us-west4-a",
    "europe-west4-a",
    "europe-west4-b",
]
_A100_ZONES = ["us-central1-f", "us-central1-b", "us-west4-b", "europe-west4-a"]


def _gce(
    name: str,
    machine: str,
    *,
    gpu: tuple[str, int] | None,
    spot: bool,
    on_demand: bool,
    disk: tuple[str, int, int],
    zones: list[str],
    **extra: Any,
) -> dict[str, Any]:
    vcpus, memory = MACHINE_TYPES[machine]
    disk_type, boot_gb, data_gb = disk
    return {
        "name": name,
        "machine_type": machine,
        "vcpus": vcpus,
        "memory_gb": memory,
        "gpu": {"accelerator": gpu[0], "count": gpu[1]} if gpu else None,
        "preemptible_allowed": spot,
        "on_demand_allowed": on_demand,
        "boot_disk": {"type": disk_type, "size_gb": boot_gb},
        "data_disk": {"type": disk_type, "size_gb": data_gb},
        "zones": zones,
        "builtin": True,
        **extra,
    }


def _builtin_specs() -> dict[str, dict[str, Any]]:
    h100, a100 = "nvidia-h100-80gb", "nvidia-tesla-a100"
    hyper = ("hyperdisk-balanced", 600, 600)
    return {
        "local": {
            "name": "local",
            "machine_type": "local",
            "vcpus": machine_vcpus(),
            "memory_gb": round(machine_memory_gb(), 1),
            "gpu": None,
            "preemptible_allowed": False,
            "on_demand_allowed": True,
            "zones": [],
            "builtin": True,
        },
        "cpu-small": _gce(
            "cpu-small",
            "n2-standard-4",
            gpu=None,
            spot=True,
            on_demand=True,
            disk=("pd-balanced", 200, 100),
            zones=["us-central1-a", "us-central1-b", "us-central1-f"],
        ),
        "cpu-large": _gce(
            "cpu-large",
            "c4-highcpu-192",
            gpu=None,
            spot=True,
            on_demand=True,
            disk=hyper,
            zones=["us-central1-f", "us-central1-a"],
        ),
        "h100-spot": _gce(
            "h100-spot",
            "a3-highgpu-1g",
            gpu=(h100, 1),
            spot=True,
            on_demand=False,
            disk=hyper,
            zones=_H100_SPOT_ZONES,
        ),
        "h100-on-demand": _gce(
            "h100-on-demand",
            "a3-highgpu-8g",
            gpu=(h100, 8),
            spot=False,
            on_demand=True,
            disk=hyper,
            zones=[*_CENTRAL[:3], "us-west4-a"],
            launch_timeout_seconds=1200,
        ),
        "a100-spot": _gce(
            "a100-spot",
            "a2-highgpu-1g",
            gpu=(a100, 1),
            spot=True,
            on_demand=False,
            disk=("pd-ssd", 600, 600),
            zones=_A100_ZONES,
        ),
        "a100-on-demand": _gce(
            "a100-on-demand",
            "a2-highgpu-1g",
            gpu=(a100, 1),
            spot=True,
            on_demand=True,
            disk=("pd-ssd", 600, 600),
            zones=list(_A100_ZONES),
        ),
    }


BUILTIN_PROFILE_NAMES: tuple[str, ...] = tuple(_builtin_specs())


def builtin_profiles() -> dict[str, Profile]:
    return {name: Profile.model_validate(spec) for name, spec in _builtin_specs().items()}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _normalize_override(spec: dict[str, Any]) -> dict[str, Any]:
    """Accept the older spellings: ``preemptible: bool`` and ``gpu: {type: h100}`` (count defaults to 1)."""
    spec = dict(spec)
    if "preemptible" in spec and isinstance(spec["preemptible"], bool):
        spot = spec.pop("preemptible")
        spec.setdefault("preemptible_allowed", spot)
        spec.setdefault("on_demand_allowed", True)
    gpu = spec.get("gpu")
    if isinstance(gpu, dict):
        gpu = dict(gpu)
        if "type" in gpu and "accelerator" not in gpu:
            short = gpu.pop("type")
            gpu["accelerator"] = GPU_ALIASES.get(str(short).lower(), short)
        if gpu.get("count") == 0:
            gpu = None
        elif gpu:
            gpu.setdefault("count", 1)
        spec["gpu"] = gpu
    return spec


def resolve_profiles(
    overrides: dict[str, dict[str, Any]] | None, *, zones: list[str] | None = None
) -> dict[str, Profile]:
    """Built-in profiles with ``gce.profile_overrides`` merged in; ``zones`` is ``gce.zones``.

    Zone priority: the profile's own override, then ``zones``, then the built-in default. A new
    name defines a custom profile; it needs ``machine_type``, ``boot_disk`` and zones (its own or
    ``zones``). Raises InvalidInput listing every problem."""
    specs = _builtin_specs()
    issues: list[Issue] = []
    if overrides is not None and not isinstance(overrides, dict):
        raise InvalidInput(
            "gce.profile_overrides must map profile names to settings.",
            fix="Write e.g. profile_overrides: {h100-spot: {zones: [us-central1-a]}}.",
        )
    if zones is not None and not isinstance(zones, list):
        raise InvalidInput(
            "gce.zones must be a list of zone names.", fix="Write e.g. zones: [us-central1-a]."
        )
    profiles: dict[str, Profile] = {}
    for name in dict.fromkeys([*specs, *(overrides or {})]):
        where = f"gce.profile_overrides.{name}"
        override = (overrides or {}).get(name)
        if override is not None and not isinstance(override, dict):
            issues.append(
                Issue(
                    location=where,
                    message=f"the override for {name} is not a mapping.",
                    fix="Write the profile settings as key: value lines.",
                )
            )
            continue
        override = _normalize_override(override or {})
        if name in specs:
            spec = _deep_merge(specs[name], override)
            if "machine_type" in override:  # a new machine type invalidates the built-in's size
                known_size = MACHINE_TYPES.get(str(override["machine_type"]))
                if "vcpus" not in override:
                    spec["vcpus"] = known_size[0] if known_size else None
                if "memory_gb" not in override:
                    spec["memory_gb"] = known_size[1] if known_size else None
            if "zones" not in override and zones and name != "local":
                spec["zones"] = list(zones)
        else:
            if "zones" not in override and zones:
                override["zones"] = list(zones)
            missing = [key for key in ("machine_type", "boot_disk", "zones") if not override.get(key)]
            if missing:
                issues.append(
                    Issue(
                        location=where,
                        message=f"custom profile {name} needs {', '.join(missing)}."
                        + did_you_mean(name, specs),
                        fix="Give machine_type, boot_disk {type, size_gb} and zones (or set gce.zones),"
                        " or fix the name if you meant to override a built-in profile.",
                    )
                )
                continue
            known = MACHINE_TYPES.get(str(override["machine_type"]))
            spec = {"name": name, "builtin": False, "gpu": None}
            if known:
                spec.update(vcpus=known[0], memory_gb=known[1])
            spec = _deep_merge(spec, override)
        spec["name"] = name
        try:
            profiles[name] = Profile.model_validate(spec)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                field = ".".join(str(p) for p in err["loc"])
                candidates = [f for f in Profile.model_fields if f not in ("name", "builtin")]
                unknown = err["type"] == "extra_forbidden"
                last = str(err["loc"][-1]) if err["loc"] else field
                issues.append(
                    Issue(
                        location=f"{where}.{field}",
                        message=f"unknown key `{last}`.{did_you_mean(last, candidates)}"
                        if unknown
                        else f"{field}: {err['msg']}.",
                        fix=f"Use the profile keys: {', '.join(candidates)}."
                        if unknown
                        else "Correct this profile setting.",
                    )
                )
    for name, profile in profiles.items():
        for other in profile.fallbacks:
            if other not in profiles or profiles[other].machine_type == "local" or other == name:
                issues.append(Issue(
                    location=f"gce.profile_overrides.{name}.fallbacks",
                    message=f"fallback {other!r} is not another GCE profile.{did_you_mean(other, profiles)}",
                    fix="List other GCE profiles (e.g. a100-spot), not local or the profile itself.",
                ))
    if issues:
        raise issues_error("Invalid compute profiles in goldfish.yaml.", issues)
    return profiles


def default_profile(backend: Backend) -> str:
    """The profile a stage without ``compute.profile`` runs with."""
    return "cpu-small" if backend == "gce" else "local"


def check_profile(name: object, backend: Backend, profiles: dict[str, Profile]) -> Issue | None:
    """Whether ``compute.profile: <name>`` can run on ``backend``; an Issue when it cannot."""
    location = "compute.profile"
    if backend not in BACKENDS:
        return Issue(
            location="jobs.backend",
            message=f"unknown backend {backend!r}.",
            fix="Use jobs.backend: local, docker or gce.",
        )
    if not isinstance(name, str):
        return Issue(
            location=location,
            message=f"compute.profile must be a profile name, got {name!r}.",
            fix=f"Use one of: {', '.join(profiles)}.",
        )
    if name not in profiles:
        return Issue(
            location=location,
            message=f"unknown compute profile {name!r}.{did_you_mean(name, profiles)}",
            fix=f"Use one of: {', '.join(profiles)}, or define it under gce.profile_overrides.",
        )
    profile = profiles[name]
    if backend == "local" and profile.gpu_count:
        return Issue(
            location=location,
            message=f"{name} needs a GPU on the gce backend; this project uses jobs.backend: {backend}.",
            fix="Use compute.profile: local or cpu-small, or switch jobs.backend to docker (with an NVIDIA"
            " runtime) or gce.",
        )
    if backend == "gce" and profile.machine_type == "local":
        return Issue(
            location=location,
            message=f"the {name} profile describes this machine and cannot run on the gce backend.",
            fix="Use a GCE profile such as cpu-small (or h100-spot for a GPU), or switch"
            " jobs.backend to local.",
        )
    return None


def local_limits(profile: Profile) -> tuple[int, float]:
    """(vcpus, memory_gb) a local/docker run of ``profile`` gets: the profile's, capped to this machine."""
    cpus, memory = machine_vcpus(), machine_memory_gb()
    return min(profile.vcpus or cpus, cpus), min(profile.memory_gb or memory, memory)
