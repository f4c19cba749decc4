"""``project.images``: the actions of ``manage_base_images`` and ``get_build_status``.

Images are named ``goldfish-base-<type>`` (base) and ``<project>-<type>`` (project); local tags
are content hashes (``r…`` for a base recipe, ``c…`` for a project environment), and named
versions (``v1``, ``v2``…) are recorded with ``set_version`` and become extra tags.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from goldfish.errors import Conflict, InvalidInput, NotFound, Unavailable
from goldfish.images import jobs, recipes, records
from goldfish.images.environment import base_ref, docker_client, log_tail, project_inputs
from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from goldfish.project import Project

Action = Literal["list", "inspect", "check", "build", "push", "set_version", "list_versions", "next_version"]
ACTIONS: tuple[str, ...] = ("list", "inspect", "check", "build", "push", "set_version", "list_versions",
                            "next_version")
WAIT_POLL = 0.5
WAIT_LIMIT = 3600.0


class ImageInfo(BaseModel):
    name: str = Field(description="Repository: goldfish-base-<type> or <project>-<type>")
    target: Literal["base", "project"]
    image_type: Literal["cpu", "gpu"]
    current_version: str | None = Field(default=None, description="Version set with set_version (or pinned in config)")
    tag: str | None = Field(default=None, description="The image reference runs would use now")
    present: bool = Field(default=False, description="The image is on the local daemon")
    image_id: str | None = None
    size_mb: float | None = None
    needs_rebuild: bool | None = Field(default=None, description="check: the current content has no local image")
    needs_push: bool | None = Field(default=None, description="check: the registry lacks this image")
    registry_tag: str | None = None
    note: str | None = None


class VersionInfo(BaseModel):
    version: str
    tag: str = Field(description="Local image reference of this version")
    image_id: str | None = None
    registry_tag: str | None = None
    digest: str | None = None
    is_current: bool = False
    created_at: str | None = None


class BuildStatus(BaseModel):
    """get_build_status(): where a build is and, if it failed, where and why."""

    build_id: str
    target: str
    image_type: str
    backend: str = "local"
    status: Literal["pending", "building", "completed", "failed", "cancelled"]
    trigger: str | None = Field(default=None, description="manage_base_images, or run:<stage run id>")
    step: str | None = Field(default=None, description="The step running now (or the last one)")
    progress: float | None = Field(default=None, description="0..1, by Dockerfile steps")
    failed_step: str | None = None
    error: str | None = None
    fix: str | None = None
    image_tag: str | None = None
    image_id: str | None = None
    registry_tag: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    logs_tail: list[str] = Field(default_factory=list, description="Last 20 lines of the build log")
    log_path: str | None = None


class ManageImagesResult(BaseModel):
    """manage_base_images() result; the fields that apply to the action are set."""

    action: str
    success: bool = True
    message: str
    base_images: list[ImageInfo] = Field(default_factory=list)
    project_images: list[ImageInfo] = Field(default_factory=list)
    image: ImageInfo | None = None
    dockerfile: str | None = Field(default=None, description="inspect: the effective Dockerfile")
    packages: list[str] = Field(default_factory=list, description="inspect: packages the image adds")
    config_paths: dict[str, str | None] = Field(default_factory=dict, description="inspect: where each input comes from")
    build: BuildStatus | None = None
    versions: list[VersionInfo] = Field(default_factory=list)
    next_version: str | None = None
    registry_tag: str | None = None
    digest: str | None = Field(default=None, description="push: the registry digest (pull by <repo>@<digest>)")


def build_status(doc: dict[str, Any]) -> BuildStatus:
    keys = BuildStatus.model_fields
    values: dict[str, Any] = {k: doc.get(k) for k in keys if k not in ("build_id", "logs_tail")
                              and doc.get(k) is not None}
    values["logs_tail"] = log_tail(Path(doc["log_path"])) if doc.get("log_path") else []
    values["build_id"] = doc["id"]
    return BuildStatus.model_validate(values)


class Images:
    def __init__(self, project: Project):
        self.project = project

    # ------------------------------------------------------------- helpers
    def _client(self) -> Any:
        from goldfish.runs.backends import dockerd

        found = dockerd.daemon_availability(self.project.config.docker.host)
        if not found.ok:
            raise Unavailable(f"Images need the Docker daemon: {found.reason}", fix=found.fix)
        return docker_client(self.project)

    def repo(self, target: str, image_type: str) -> str:
        if target == "base":
            return recipes.base_name(image_type)
        return recipes.project_repo(self.project.config.project_name, image_type)

    def registry(self) -> str | None:
        cfg = self.project.config
        if cfg.docker.registry:
            return cfg.docker.registry.rstrip("/")
        if cfg.gce is not None and cfg.gce.project_id:
            return cfg.gce.effective_artifact_registry
        return None

    def current_ref(self, target: str, image_type: str, client: Any) -> tuple[str | None, str | None]:
        """(reference runs would use, note when it cannot be known)."""
        if target == "base":
            return base_ref(self.project, image_type), None
        pinned = self.project.config.docker.project_image_version
        repo = self.repo(target, image_type)
        version = pinned or records.current_version(self.project, repo)
        if version:
            return f"{repo}:{version}", None
        try:
            return project_inputs(self.project, self.project.root, image_type, client).tag, None
        except Exception as exc:
            return None, getattr(exc, "message", str(exc))

    def info(self, target: str, image_type: str, client: Any) -> ImageInfo:
        from docker.errors import ImageNotFound

        repo = self.repo(target, image_type)
        ref, note = self.current_ref(target, image_type, client)
        info = ImageInfo(name=repo, target=target, image_type=image_type,  # type: ignore[arg-type]
                         current_version=self.project.config.docker.base_image_version if target == "base" else None,
                         tag=ref, note=note)
        info.current_version = info.current_version or records.current_version(self.project, repo)
        if ref:
            try:
                image = client.images.get(ref)
                info.present, info.image_id = True, str(image.id)
                info.size_mb = round(float(image.attrs.get("Size") or 0) / 1e6, 1)
            except ImageNotFound:
                info.present = False
        return info

    def _require_type(self, action: str, image_type: str | None) -> str:
        if image_type is None:
            raise InvalidInput(f"manage_base_images(action={action!r}) needs image_type.",
                               fix="Pass image_type='cpu' or image_type='gpu'.")
        if image_type not in recipes.IMAGE_TYPES:
            raise InvalidInput(f"Unknown image_type {image_type!r}.", fix="Use image_type='cpu' or 'gpu'.")
        return image_type

    # ------------------------------------------------------------- actions
    def manage(self, action: str, image_type: str | None = None, target: str = "project", backend: str = "local",
               version: str | None = None, no_cache: bool = False, wait: bool = False,
               progress: Callable[[BuildStatus], None] | None = None) -> ManageImagesResult:
        if action not in ACTIONS:
            raise InvalidInput(f"Unknown action {action!r}.", fix=f"Use one of: {', '.join(ACTIONS)}.")
        if target not in recipes.TARGETS:
            raise InvalidInput(f"Unknown target {target!r}.", fix="Use target='project' or target='base'.")
        if backend not in ("local", "cloud"):
            raise InvalidInput(f"Unknown backend {backend!r}.", fix="Use backend='local'.")
        if image_type is not None or action not in ("list", "check"):
            image_type = self._require_type(action, image_type)
        if backend == "cloud":
            raise Unavailable("backend='cloud' (Cloud Build) is not available in this Goldfish yet.",
                              fix="Use backend='local' (the local Docker daemon); for the GPU base image, build on a"
                              " machine that can pull public CUDA images and push it to your registry.")
        if action == "set_version" and not version:
            raise InvalidInput("set_version needs version (e.g. 'v3').",
                               fix="Call next_version for the next free number, then set_version(version=...).")
        if version is not None and records.version_number(version) < 1:
            raise InvalidInput(f"version {version!r} is not of the form v<N> (N ≥ 1).", fix="Use e.g. version='v3'.")
        handler = getattr(self, f"_{action}")
        result: ManageImagesResult = handler(image_type, target, version=version, no_cache=no_cache, wait=wait,
                                             progress=progress)
        return result

    def _list(self, image_type: str | None, target: str, **_: Any) -> ManageImagesResult:
        client = self._client()
        types = [image_type] if image_type else list(recipes.IMAGE_TYPES)
        base = [self.info("base", t, client) for t in types]
        proj = [self.info("project", t, client) for t in types]
        return ManageImagesResult(action="list", message=f"{sum(i.present for i in base + proj)} of"
                                  f" {len(base) + len(proj)} images are on the local daemon.",
                                  base_images=base, project_images=proj)

    def _check(self, image_type: str | None, target: str, **_: Any) -> ManageImagesResult:
        result = self._list(image_type, target)
        registry = self.registry()
        client = self._client()
        for info in [*result.base_images, *result.project_images]:
            info.needs_rebuild = not info.present
            if registry is None:
                info.needs_push = None
                info.note = (info.note or "") + " no registry configured (docker.registry)."
                continue
            remote = f"{registry}/{info.tag}" if info.tag else None
            info.registry_tag = remote
            info.needs_push = True
            if remote and info.present:
                try:
                    data = client.images.get_registry_data(remote)
                    local = client.images.get(info.tag)
                    info.needs_push = data.id not in (local.attrs.get("RepoDigests") or []) and not any(
                        d.endswith(data.id) for d in local.attrs.get("RepoDigests") or [])
                except Exception:
                    info.needs_push = True
        result.action = "check"
        result.message = (f"{sum(bool(i.needs_rebuild) for i in result.base_images + result.project_images)} need a"
                          f" build, {sum(bool(i.needs_push) for i in result.base_images + result.project_images)} a push"
                          + ("" if registry else " (no registry configured: set docker.registry)") + ".")
        return result

    def _inspect(self, image_type: str, target: str, **_: Any) -> ManageImagesResult:
        client = self._client()
        info = self.info(target, image_type, client)
        cfg = self.project.config.docker
        if target == "base":
            if image_type == "cpu":
                recipe = recipes.cpu_base_recipe()
                dockerfile, packages = recipes.cpu_base_description(recipe), list(recipe["packages"])
            else:
                dockerfile, packages = recipes.gpu_base_dockerfile(), [recipes.GPU_TORCH, "numpy", "pandas",
                                                                       "scikit-learn"]
            paths: dict[str, str | None] = {"docker.base_images": getattr(cfg.base_images, image_type),
                                            "docker.base_image_version": cfg.base_image_version}
        else:
            inputs = project_inputs(self.project, self.project.root, image_type, client).inputs
            dockerfile = recipes.project_dockerfile(inputs)
            packages = list(inputs.extra_packages)
            user = self.project.root / f"Dockerfile.{image_type}"
            req = self.project.root / "requirements.txt"
            paths = {"base_image": inputs.base_ref, "docker.extra_packages": ", ".join(inputs.extra_packages) or None,
                     f"Dockerfile.{image_type}": str(user) if user.is_file() else None,
                     "requirements.txt": str(req) if req.is_file() else None,
                     "per-version": "a version's requirements.txt and Dockerfile."
                     f"{image_type} are added at run time (content-addressed tag)"}
        return ManageImagesResult(action="inspect", message=f"{info.name}: {info.tag}", image=info,
                                  dockerfile=dockerfile, packages=packages, config_paths=paths)

    def _build(self, image_type: str, target: str, *, no_cache: bool, wait: bool,
               progress: Callable[[BuildStatus], None] | None, **_: Any) -> ManageImagesResult:
        self._client()
        # A GPU base build is recorded and attempted: where it cannot pull its CUDA image, the
        # failure names that and what to do (build.PULL_FIX).
        doc = records.new_build(self.project, target=target, image_type=image_type, backend="local",
                                trigger="manage_base_images", no_cache=no_cache,
                                image_tag=recipes.base_tag(image_type) if target == "base" else None)
        jobs.spawn_build(self.project, doc["id"])
        status = self.build_status(doc["id"])
        if wait:
            status = self.wait(doc["id"], progress)
        ok = status.status != "failed"
        message = {"completed": f"Built {status.image_tag}.",
                   "failed": f"Build {doc['id']} failed at {status.failed_step!r}: {status.error}"}.get(
            status.status, f"Build {doc['id']} started; poll get_build_status('{doc['id']}').")
        return ManageImagesResult(action="build", success=ok, message=message, build=status)

    def wait(self, build_id: str, progress: Callable[[BuildStatus], None] | None = None,
             limit: float = WAIT_LIMIT) -> BuildStatus:
        deadline = time.monotonic() + limit
        while True:
            status = self.build_status(build_id)
            if progress is not None:
                progress(status)
            if status.status in records.TERMINAL or time.monotonic() > deadline:
                return status
            time.sleep(WAIT_POLL)

    def _push(self, image_type: str, target: str, **_: Any) -> ManageImagesResult:
        registry = self.registry()
        if registry is None:
            raise InvalidInput("No registry is configured to push to.",
                               fix="Set docker.registry in goldfish.yaml (e.g. 127.0.0.1:5000/goldfish), or the gce"
                               " section (gce.project_id / gce.artifact_registry).")
        client = self._client()
        info = self.info(target, image_type, client)
        if not info.present or not info.tag:
            raise Conflict(f"{info.tag or info.name} is not on the local daemon; nothing to push.",
                           fix=f"Build it first: manage_base_images(action='build', image_type='{image_type}',"
                           f" target='{target}', wait=True).")
        remote_repo, _sep, remote_tag = f"{registry}/{info.tag}".rpartition(":")
        client.api.tag(info.image_id, remote_repo, remote_tag)
        error, digest = None, None
        for chunk in client.api.push(remote_repo, tag=remote_tag, stream=True, decode=True):
            if "error" in chunk:
                error = str(chunk["error"])
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
        if error is not None:
            raise Unavailable(f"Pushing {remote_repo}:{remote_tag} failed: {error}",
                              fix="Check that the registry is running and reachable, and that you may push to it.")
        remote = f"{remote_repo}:{remote_tag}"
        self._remember_push(target, image_type, info, remote, digest)
        return ManageImagesResult(action="push", message=f"Pushed {remote} ({digest}).", image=info,
                                  registry_tag=remote, digest=digest)

    def _remember_push(self, target: str, image_type: str, info: ImageInfo, remote: str, digest: str | None) -> None:
        with self.project.store.transaction() as tx:
            table = tx.table("image_pushes", records.PARTITION)
            table.put(info.image_id or remote, {"repo": info.name, "target": target, "image_type": image_type,
                                                 "tag": info.tag, "registry_tag": remote, "digest": digest,
                                                 "pushed_at": now_iso()})

    def _set_version(self, image_type: str, target: str, *, version: str, **_: Any) -> ManageImagesResult:
        client = self._client()
        repo = self.repo(target, image_type)
        rows = {r["version"]: r for r in records.versions(self.project, repo)}
        existing = rows.get(version)
        if existing is not None:
            ref = existing["tag"]
        else:
            info = self.info(target, image_type, client)
            if not info.present or not info.tag:
                raise Conflict(f"{repo} has no image on the local daemon to call {version}.",
                               fix=f"Build it first: manage_base_images(action='build', image_type='{image_type}',"
                               f" target='{target}', wait=True).")
            ref = info.tag
        image = client.images.get(ref)
        client.api.tag(image.id, repo, version)
        pushes = {d.get("tag"): d for d in self.project.store.table("image_pushes", records.PARTITION).docs()}
        pushed = pushes.get(ref) or {}
        with self.project.store.transaction() as tx:
            tx.table(records.VERSIONS, records.PARTITION).put(f"{repo}:{version}", {
                "repo": repo, "version": version, "tag": ref, "image_id": str(image.id), "target": target,
                "image_type": image_type, "registry_tag": pushed.get("registry_tag"), "digest": pushed.get("digest"),
                "created_at": (existing or {}).get("created_at") or now_iso()})
            tx.table(records.CURRENT, records.PARTITION).put(repo, {"repo": repo, "version": version, "at": now_iso()})
        return ManageImagesResult(action="set_version", message=f"{repo} is now {version} ({ref}, {image.id[:19]}).",
                                  versions=self._versions(repo))

    def _versions(self, repo: str) -> list[VersionInfo]:
        current = records.current_version(self.project, repo)
        return [VersionInfo(version=r["version"], tag=r["tag"], image_id=r.get("image_id"),
                            registry_tag=r.get("registry_tag"), digest=r.get("digest"),
                            is_current=r["version"] == current, created_at=r.get("created_at"))
                for r in reversed(records.versions(self.project, repo))]

    def _list_versions(self, image_type: str, target: str, **_: Any) -> ManageImagesResult:
        repo = self.repo(target, image_type)
        rows = self._versions(repo)
        return ManageImagesResult(action="list_versions", message=f"{repo}: {len(rows)} version(s).", versions=rows)

    def _next_version(self, image_type: str, target: str, **_: Any) -> ManageImagesResult:
        repo = self.repo(target, image_type)
        top = max((records.version_number(r["version"]) for r in records.versions(self.project, repo)), default=0)
        return ManageImagesResult(action="next_version", message=f"Next version of {repo}: v{top + 1}.",
                                  next_version=f"v{top + 1}")

    # ------------------------------------------------------------- builds
    def build_status(self, build_id: str) -> BuildStatus:
        if not re.fullmatch(r"build-[0-9a-f]{8}", build_id or ""):
            raise InvalidInput(f"{build_id!r} is not a build id.", fix="Pass the build_id manage_base_images returned"
                               " (build-<8 hex digits>).")
        doc = records.get_build(self.project, build_id)
        if doc is None:
            raise NotFound(f"No build {build_id}.", fix="Use a build_id returned by manage_base_images(action='build').")
        return build_status(jobs.reconcile_build(self.project, doc))
