"""The VM a stage run asks for: its name, labels, metadata and the Compute Engine resource body."""

from __future__ import annotations

import re
from typing import Any

LABEL_RE = re.compile(r"[^a-z0-9_-]")
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
# Boot image families: Debian for CPU workers (the startup script installs docker.io when missing),
# a Deep Learning VM image (NVIDIA driver, Docker with the NVIDIA runtime) for GPU workers.
BOOT_IMAGES = {
    "debian-12": "projects/debian-cloud/global/images/family/debian-12",
    "gpu": "projects/deeplearning-platform-release/global/images/family/common-cu124-debian-11-py310",
}


def instance_name(run_id: str, attempt: int) -> str:
    """``gf-<run hex>-a<attempt>``: one name per attempt, so a retried insert finds its own VM."""
    return f"gf-{run_id.removeprefix('stage-')}-a{attempt}"


def label_value(text: object) -> str:
    """A label value: lowercase letters, digits, '_' and '-', at most 63 characters."""
    return LABEL_RE.sub("_", str(text).lower())[:63]


def boot_image(option: dict[str, Any]) -> str:
    image = str(option.get("boot_image") or "debian-12")
    if option.get("gpu_count") and image == "debian-12":
        return BOOT_IMAGES["gpu"]
    return BOOT_IMAGES.get(image, image)


def build_instance(name: str, zone: str, option: dict[str, Any], provisioning: str, *, metadata: dict[str, str],
                   labels: dict[str, str], service_account: str | None, max_run_seconds: int) -> Any:
    """The ``compute_v1.Instance`` to insert."""
    from google.cloud import compute_v1

    disk = option.get("boot_disk") or {"type": "pd-balanced", "size_gb": 100}
    scheduling = compute_v1.Scheduling(
        provisioning_model=provisioning,
        # Deleted, not stopped, when preempted or past its run duration: a stopped VM still bills its disks.
        instance_termination_action="DELETE",
        on_host_maintenance="TERMINATE" if option.get("gpu_count") or provisioning == "SPOT" else "MIGRATE",
        automatic_restart=False,
        max_run_duration=compute_v1.Duration(seconds=int(max_run_seconds)),
    )
    body = compute_v1.Instance(
        name=name,
        machine_type=f"zones/{zone}/machineTypes/{option['machine_type']}",
        labels={k: label_value(v) for k, v in labels.items()},
        metadata=compute_v1.Metadata(items=[compute_v1.Items(key=k, value=v) for k, v in metadata.items()]),
        disks=[compute_v1.AttachedDisk(
            boot=True, auto_delete=True,
            initialize_params=compute_v1.AttachedDiskInitializeParams(
                source_image=boot_image(option), disk_size_gb=int(disk["size_gb"]),
                disk_type=f"zones/{zone}/diskTypes/{disk['type']}"),
        )],
        network_interfaces=[compute_v1.NetworkInterface(
            network="global/networks/default",
            access_configs=[compute_v1.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")],
        )],
        service_accounts=[compute_v1.ServiceAccount(email=service_account or "default", scopes=SCOPES)],
        scheduling=scheduling,
    )
    if option.get("gpu_count"):
        body.guest_accelerators = [compute_v1.AcceleratorConfig(
            accelerator_type=f"zones/{zone}/acceleratorTypes/{option['accelerator']}",
            accelerator_count=int(option["gpu_count"]))]
    return body
