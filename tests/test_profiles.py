"""Compute profiles: the built-in table, overrides, custom profiles and backend rules."""

from __future__ import annotations

from typing import Any

import pytest

from goldfish.errors import InvalidInput
from goldfish.pipelines.profiles import (
    builtin_profiles,
    check_profile,
    default_profile,
    local_limits,
    machine_memory_gb,
    machine_vcpus,
    resolve_profiles,
)

H100_SPOT_ZONES = [
    "us-central1-a",
    "us-central1-b",
    "us-central1-c",
    "us-central1-f",
    "us-east1-b",
    "us-east1-c",
    "us-west1-a",
    "us-west1-b",
    "us-west4-a",
    "europe-west4-a",
    "europe-west4-b",
]
A100_ZONES = ["us-central1-f", "us-central1-b", "us-west4-b", "europe-west4-a"]


@pytest.mark.parametrize(
    "name,machine,vcpus,memory,gpu,spot,on_demand,disk,boot_gb,data_gb,zones",
    [
        (
            "cpu-small",
            "n2-standard-4",
            4,
            16,
            None,
            True,
            True,
            "pd-balanced",
            200,
            100,
            ["us-central1-a", "us-central1-b", "us-central1-f"],
        ),
        (
            "cpu-large",
            "c4-highcpu-192",
            192,
            384,
            None,
            True,
            True,
            "hyperdisk-balanced",
            600,
            600,
            ["us-central1-f", "us-central1-a"],
        ),
        (
            "h100-spot",
            "a3-highgpu-1g",
            26,
            234,
            ("nvidia-h100-80gb", 1),
            True,
            False,
            "hyperdisk-balanced",
            600,
            600,
            H100_SPOT_ZONES,
        ),
        (
            "h100-on-demand",
            "a3-highgpu-8g",
            208,
            1872,
            ("nvidia-h100-80gb", 8),
            False,
            True,
            "hyperdisk-balanced",
            600,
            600,
            ["us-central1-a", "us-central1-b", "us-central1-c", "us-west4-a"],
        ),
        (
            "a100-spot",
            "a2-highgpu-1g",
            12,
            85,
            ("nvidia-tesla-a100", 1),
            True,
            False,
            "pd-ssd",
            600,
            600,
            A100_ZONES,
        ),
        (
            "a100-on-demand",
            "a2-highgpu-1g",
            12,
            85,
            ("nvidia-tesla-a100", 1),
            True,
            True,
            "pd-ssd",
            600,
            600,
            A100_ZONES,
        ),
    ],
)
def test_builtin_gce_profiles(
    name: str,
    machine: str,
    vcpus: int,
    memory: float,
    gpu: Any,
    spot: bool,
    on_demand: bool,
    disk: str,
    boot_gb: int,
    data_gb: int,
    zones: list[str],
) -> None:
    p = builtin_profiles()[name]
    assert (p.machine_type, p.vcpus, p.memory_gb) == (machine, vcpus, memory)
    assert (p.gpu.accelerator, p.gpu.count) == gpu if gpu else p.gpu is None
    assert (p.preemptible_allowed, p.on_demand_allowed) == (spot, on_demand)
    assert p.boot_disk is not None and p.data_disk is not None
    assert (p.boot_disk.type, p.boot_disk.size_gb, p.data_disk.type, p.data_disk.size_gb) == (
        disk,
        boot_gb,
        disk,
        data_gb,
    )
    assert p.zones == zones and p.boot_image == "debian-12" and p.builtin
    assert p.image_kind == ("gpu" if gpu else "cpu")


def test_h100_on_demand_launch_timeout_and_local_profile() -> None:
    profiles = builtin_profiles()
    assert profiles["h100-on-demand"].launch_timeout_seconds == 1200
    local = profiles["local"]
    assert local.vcpus == machine_vcpus() and local.gpu is None and local.zones == []
    assert abs((local.memory_gb or 0) - machine_memory_gb()) < 0.1


def test_overrides_deep_merge_and_zone_priority() -> None:
    profiles = resolve_profiles(
        {
            "h100-spot": {"zones": ["us-east1-b"], "boot_disk": {"size_gb": 1000}},
            "cpu-small": {"preemptible": False},
        },
        zones=["europe-west4-a"],
    )
    h100 = profiles["h100-spot"]
    assert h100.zones == ["us-east1-b"]  # the profile's own override wins
    assert h100.boot_disk is not None and (h100.boot_disk.type, h100.boot_disk.size_gb) == (
        "hyperdisk-balanced",
        1000,
    )
    assert profiles["cpu-large"].zones == ["europe-west4-a"]  # then gce.zones
    assert resolve_profiles(None)["cpu-large"].zones == ["us-central1-f", "us-central1-a"]  # then the default
    assert profiles["cpu-small"].preemptible_allowed is False  # legacy `preemptible` spelling
    assert profiles["local"].zones == []


def test_changing_machine_type_updates_size() -> None:
    profiles = resolve_profiles(
        {"cpu-small": {"machine_type": "c4-highcpu-192"}, "cpu-large": {"machine_type": "n2-highmem-2"}}
    )
    assert (profiles["cpu-small"].vcpus, profiles["cpu-small"].memory_gb) == (192, 384)
    assert (profiles["cpu-large"].vcpus, profiles["cpu-large"].memory_gb) == (None, None)


def test_custom_profiles() -> None:
    spec = {
        "machine_type": "g2-standard-8",
        "zones": ["us-central1-a"],
        "boot_disk": {"type": "pd-ssd", "size_gb": 100},
        "gpu": {"type": "l4"},
    }
    custom = resolve_profiles({"l4-spot": spec})["l4-spot"]
    assert custom.gpu is not None and (custom.gpu.accelerator, custom.gpu.count) == ("nvidia-l4", 1)
    assert not custom.builtin and custom.vcpus is None
    known = resolve_profiles(
        {"small": {"machine_type": "n2-standard-4", "boot_disk": {"type": "pd-ssd", "size_gb": 50}}},
        zones=["us-west1-a"],
    )["small"]
    assert (known.vcpus, known.memory_gb, known.zones, known.gpu) == (4, 16, ["us-west1-a"], None)


@pytest.mark.parametrize(
    "overrides,location,needle",
    [
        ({"mine": {"machine_type": "n2-standard-4"}}, "gce.profile_overrides.mine", "boot_disk, zones"),
        (
            {"cpu-smal": {"zones": ["us-central1-a"]}},
            "gce.profile_overrides.cpu-smal",
            'Did you mean "cpu-small"',
        ),
        ({"cpu-small": {"vcpu": 8}}, "gce.profile_overrides.cpu-small.vcpu", 'Did you mean "vcpus"'),
        ({"cpu-small": {"zones": ["Mars"]}}, "gce.profile_overrides.cpu-small.zones", "zone"),
        (
            {"cpu-small": {"gpu": {"accelerator": "x", "count": -1}}},
            "gce.profile_overrides.cpu-small.gpu.count",
            "",
        ),
        ({"cpu-small": "big"}, "gce.profile_overrides.cpu-small", "not a mapping"),
    ],
)
def test_bad_overrides(overrides: dict[str, Any], location: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as info:
        resolve_profiles(overrides)
    issues = {i["location"]: i for i in info.value.details["issues"]}
    assert location in issues, issues
    assert needle in issues[location]["message"] and issues[location]["fix"]


def test_gpu_profile_refused_on_local_and_left_to_the_daemon_on_docker() -> None:
    profiles = builtin_profiles()
    issue = check_profile("h100-spot", "local", profiles)
    assert issue is not None
    assert issue.message == "h100-spot needs a GPU on the gce backend; this project uses jobs.backend: local."
    assert issue.fix is not None and "jobs.backend to docker (with an NVIDIA runtime) or gce" in issue.fix
    # docker: whether the daemon can give GPUs is the backend's availability check (dry_run refuses).
    assert check_profile("h100-spot", "docker", profiles) is None
    for backend in ("local", "docker"):
        assert check_profile("cpu-small", backend, profiles) is None  # type: ignore[arg-type]
        assert check_profile("local", backend, profiles) is None  # type: ignore[arg-type]


def test_profile_rules_on_gce() -> None:
    profiles = builtin_profiles()
    issue = check_profile("local", "gce", profiles)
    assert issue is not None and "cpu-small" in (issue.fix or "")
    assert check_profile("a100-on-demand", "gce", profiles) is None
    unknown = check_profile("h100-spto", "gce", profiles)
    assert unknown is not None and 'Did you mean "h100-spot"' in unknown.message
    assert check_profile(3, "gce", profiles) is not None
    assert check_profile("cpu-small", "k8s", profiles) is not None  # type: ignore[arg-type]
    assert (default_profile("gce"), default_profile("local"), default_profile("docker")) == (
        "cpu-small",
        "local",
        "local",
    )


def test_local_limits_capped_to_machine() -> None:
    profiles = builtin_profiles()
    vcpus, memory = local_limits(profiles["cpu-large"])
    assert vcpus == min(192, machine_vcpus()) and memory == min(384, machine_memory_gb())
    small_cpus, small_mem = local_limits(profiles["cpu-small"])
    assert small_cpus == min(4, machine_vcpus()) and small_mem == min(16, machine_memory_gb())
