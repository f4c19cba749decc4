"""A gce stage with real containers: the fake realises the VM as a container of the CPU base image
(on the test daemon, host network, the daemon's socket mounted) running the real startup script,
and the agent runs the stage as a sibling container of the project image, built and pushed to a
registry on 127.0.0.1 with manage_base_images — the path a real VM takes, minus Google."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from goldfish.runs.backends import dockerd
from tests.cloud_helpers import CloudEnv, make_cloud_env, needs_fake, storage_emulator
from tests.docker_helpers import daemon, fresh_images, name_project, registry, require_base_image
from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, file_stage, wait_terminal

__all__ = ["registry", "storage_emulator"]
pytestmark = pytest.mark.slow


@pytest.fixture
def container_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage_emulator: str,
                  registry: str) -> Iterator[CloudEnv]:
    needs_fake()
    client = daemon()
    fake = {"docker": client, "vm_image": require_base_image(),
            "docker_socket": dockerd.resolve_host().removeprefix("unix://")}
    with fresh_images():
        for ce in make_cloud_env(tmp_path, monkeypatch, storage_emulator, fake=fake,
                                 artifact_registry=f"{registry}/goldfish"):
            name_project(ce.env.root, "gcevm")
            yield ce
    leftover = client.containers.list(all=True, filters={"label": "goldfish-fake-vm"})
    for container in leftover:
        container.remove(force=True)


def test_stage_runs_in_a_container_on_a_container_vm(container_env: CloudEnv) -> None:
    env, cloud = container_env.env, container_env.cloud
    env.write([file_stage("prep")], {"prep": WRITE_OUTPUTS})
    project = env.project
    built = project.images.manage("build", image_type="cpu", target="project", wait=True)
    assert built.success, built.message
    pushed = project.images.manage("push", image_type="cpu")
    assert pushed.registry_tag and pushed.registry_tag.startswith(str(project.config.gce.artifact_registry))  # type: ignore[union-attr]
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    rid = started.stage_runs[0].stage_run_id
    result = wait_terminal(project, started.pipeline_run_id, timeout=180)
    doc = project.runs.get(rid)
    assert result.status == "completed", doc.get("error")
    assert doc["outputs"]["out"]["exists"] and doc["metrics_summary"]["acc"]["count"] == 5
    spec = container_env.storage.bucket(container_env.bucket).blob(f"runs/{rid}/spec.json").download_as_bytes()
    assert pushed.registry_tag.encode() in spec  # the VM ran the pushed project image
    from goldfish.runs.logs import read_logs

    assert "stage prep done" in read_logs(project, rid).logs
    assert not cloud.live()  # the VM deleted itself
    assert not daemon().containers.list(all=True, filters={"label": f"goldfish-run={rid}"})
