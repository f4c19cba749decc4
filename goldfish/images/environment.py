"""The image a docker/gce stage runs in: resolved, and built only when its content changed.

Base image: ``docker.base_images.<type>`` at ``docker.base_image_version``, else the version
registered with ``set_version``, else the shipped recipe's content tag. Project image: the base
plus the version's environment (``ProjectInputs``), tagged by its content hash — an unchanged
environment finds its image and builds nothing.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.errors import GoldfishError
from goldfish.images import recipes, records
from goldfish.images.build import PULL_FIX, BuildFailed, BuildLog, build_dockerfile
from goldfish.procs import proc_start_time
from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from goldfish.project import Project


class EnvironmentError_(GoldfishError):
    """The stage's environment cannot be built (run cause ``environment``)."""

    kind = "environment"


@dataclass
class ImageChoice:
    """What a run used: recorded on the run as ``image``."""

    tag: str
    image_id: str
    base_ref: str
    base_id: str
    content_hash: str
    built: bool
    build_id: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def docker_client(project: Project) -> Any:
    from goldfish.runs.backends import dockerd

    return dockerd.client(project.config.docker.host)


def base_ref(project: Project, image_type: str) -> str:
    """config (docker.base_images + docker.base_image_version) → registered version → shipped recipe."""
    from goldfish.images.records import current_version

    docker = project.config.docker
    name = getattr(docker.base_images, image_type)
    if ":" in name.rsplit("/", 1)[-1] or "@" in name:
        return name
    version = docker.base_image_version or current_version(project, name)
    if version:
        return f"{name}:{version}"
    if name == recipes.base_name(image_type):
        return recipes.base_tag(image_type)
    return f"{name}:latest"


def project_inputs(project: Project, app_dir: Path, image_type: str, client: Any) -> ProjectInputsResult:
    from docker.errors import ImageNotFound

    ref = base_ref(project, image_type)
    try:
        base = client.images.get(ref)
    except ImageNotFound:
        base = _pull_from_registry(client, ref)
    if base is None:
        fix = ("Build it: scripts/setup-docker.sh (CPU base), or manage_base_images(action='build',"
               f" target='base', image_type='{image_type}').")
        if image_type == "gpu":
            fix += " " + PULL_FIX
        raise EnvironmentError_(f"base image {ref} is not on the Docker daemon.", fix=fix) from None
    extra = [*project.config.docker.extra_packages.get("base", []),
             *project.config.docker.extra_packages.get(image_type, [])]  # type: ignore[call-overload]
    req = app_dir / "requirements.txt"
    user = app_dir / f"Dockerfile.{image_type}"
    if not user.is_file():  # the project's own, beside goldfish.yaml
        user = project.root / f"Dockerfile.{image_type}"
    inputs = recipes.ProjectInputs(
        image_type=image_type, base_ref=ref, base_id=str(base.id), extra_packages=extra,
        requirements=req.read_text() if req.is_file() else None,
        user_dockerfile=user.read_text() if user.is_file() else None, sdk_hash=recipes.sdk_hash())
    return ProjectInputsResult(inputs, f"{recipes.project_repo(project.config.project_name, image_type)}:"
                                       f"c{inputs.content_hash()[:12]}")


def _pull_from_registry(client: Any, ref: str) -> Any:
    """A base named with a registry host (``host[:port]/path/name:tag``) is pulled when missing."""
    first = ref.split("/", 1)[0]
    if "/" not in ref or not ("." in first or ":" in first or first == "localhost"):
        return None
    try:
        return client.images.pull(ref)
    except Exception:
        return None


@dataclass
class ProjectInputsResult:
    inputs: recipes.ProjectInputs
    tag: str


def ensure_project_image(project: Project, app_dir: Path, image_type: str, *, note: Any = None,
                         trigger: str = "run", no_cache: bool = False, force: bool = False,
                         build_id: str | None = None, on_step: Any = None) -> ImageChoice:
    """The project image for the environment in ``app_dir``; built (and recorded) only if missing.

    Raises EnvironmentError_ naming the failing step and its error; nothing is tagged then."""
    from docker.errors import ImageNotFound
    from filelock import FileLock

    started = time.monotonic()
    client = docker_client(project)
    try:
        found = project_inputs(project, app_dir, image_type, client)
        inputs, tag = found.inputs, found.tag
        if inputs.user_dockerfile:
            try:
                recipes.user_dockerfile_lines(inputs.user_dockerfile, image_type)
            except ValueError as exc:
                raise EnvironmentError_(str(exc), fix=f"Edit Dockerfile.{image_type} in the workspace.") from None
    except EnvironmentError_ as exc:
        if build_id is not None:
            records.patch_build(project, build_id, {"status": "failed", "completed_at": now_iso(),
                                                    "error": exc.message, "fix": exc.fix, "failed_step": "resolve"})
        raise
    lock_dir = project.gf_dir / "images" / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / f"{inputs.content_hash()[:16]}.lock")):
        if not force:
            try:
                image = client.images.get(tag)
                return ImageChoice(tag=tag, image_id=str(image.id), base_ref=inputs.base_ref, base_id=inputs.base_id,
                                   content_hash=inputs.content_hash(), built=False,
                                   seconds=time.monotonic() - started)
            except ImageNotFound:
                pass
        fields = {"content_hash": inputs.content_hash(), "image_tag": tag, "base_ref": inputs.base_ref}
        if build_id is None:
            # The builder is this process (a runner): a runner that dies mid-build leaves a record
            # the next reader reconciles to failed.
            doc = records.new_build(project, target="project", image_type=image_type, backend="local",
                                    trigger=trigger, pid=os.getpid(), proc_start=proc_start_time(os.getpid()),
                                    **fields)
            build_id = doc["id"]
        else:
            doc = records.patch_build(project, build_id, fields)
        records.patch_build(project, build_id, {"status": "building", "started_at": now_iso()})
        if note is not None:
            note(f"building image {tag} (build {build_id}; log {doc['log_path']})")
        context = project.gf_dir / "images" / "contexts" / build_id
        log = BuildLog(Path(doc["log_path"]), on_line=None, on_step=on_step)
        try:
            recipes.write_project_context(inputs, context)
            image_id = build_dockerfile(client, context, tag, log, no_cache=no_cache)
        except BuildFailed as exc:
            tail = log_tail(Path(doc["log_path"]))
            records.patch_build(project, build_id, {"status": "failed", "completed_at": now_iso(),
                                                    "error": exc.message, "failed_step": exc.step, "fix": exc.fix})
            if note is not None:
                for line in tail[-15:]:
                    note(f"  build: {line}")
            said = [line.strip() for line in tail if "ERROR" in line or "error:" in line.lower()][-3:]
            detail = " | ".join(said) or exc.message.split(": ", 1)[-1]
            raise EnvironmentError_(
                f"Building image {tag} failed at {exc.step!r}: {detail[:1500]}",
                fix=exc.fix or "Fix the requirement or Dockerfile line named above (get_build_status"
                f"('{build_id}') shows the log), then run again.",
                details={"build_id": build_id}) from None
        finally:
            log.close()
            shutil.rmtree(context, ignore_errors=True)
        records.patch_build(project, build_id, {"status": "completed", "completed_at": now_iso(),
                                                "image_id": image_id, "progress": 1.0})
        if note is not None:
            note(f"built image {tag} ({image_id[:19]}) in {time.monotonic() - started:.1f}s")
        return ImageChoice(tag=tag, image_id=image_id, base_ref=inputs.base_ref, base_id=inputs.base_id,
                           content_hash=inputs.content_hash(), built=True, build_id=build_id,
                           seconds=time.monotonic() - started)


def log_tail(path: Path, lines: int = 20) -> list[str]:
    try:
        data = path.read_bytes()[-64_000:]
    except FileNotFoundError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]
