"""Base images: ``goldfish-base-cpu`` from Debian packages, ``goldfish-base-gpu`` from its Dockerfile.

Used by ``manage_base_images(action='build', target='base')`` and by ``goldfish images
build-base`` (which scripts/setup-docker.sh runs once per machine).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from goldfish.images import recipes
from goldfish.images.build import BuildFailed, BuildLog, build_cpu_base, build_dockerfile


def base_exists(client: Any, image_type: str) -> str | None:
    """The id of the shipped recipe's base image on the daemon, or None."""
    from docker.errors import ImageNotFound

    try:
        return str(client.images.get(recipes.base_tag(image_type)).id)
    except ImageNotFound:
        return None


def build_base(client: Any, image_type: str, log: BuildLog, *, no_cache: bool = False,
               workdir: Path | None = None) -> tuple[str, str]:
    """Build the base image of ``image_type`` under its recipe tag; returns (tag, image id)."""
    tag = recipes.base_tag(image_type)
    if image_type == "cpu":
        return tag, build_cpu_base(client, tag, log, workdir=workdir)
    context = Path(tempfile.mkdtemp(prefix="goldfish-gpu-base-", dir=workdir))
    try:
        (context / "Dockerfile").write_text(recipes.gpu_base_dockerfile())
        return tag, build_dockerfile(client, context, tag, log, no_cache=no_cache)
    finally:
        shutil.rmtree(context, ignore_errors=True)


def build_base_cli(image_type: str, *, if_missing: bool) -> int:
    from goldfish.runs.backends import dockerd

    found = dockerd.daemon_availability()
    if not found.ok:
        print(f"goldfish images: {found.render()}", file=sys.stderr)
        return 1
    client = dockerd.client()
    tag = recipes.base_tag(image_type)
    existing = base_exists(client, image_type)
    if if_missing and existing:
        print(f"goldfish images: {tag} is present ({existing[:19]}); nothing to build")
        return 0
    started = time.monotonic()
    print(f"goldfish images: building {tag} ...", flush=True)
    log = BuildLog(None, on_line=lambda line: print("  " + line, flush=True))
    try:
        _, image_id = build_base(client, image_type, log)
    except BuildFailed as exc:
        print(f"goldfish images: {exc}", file=sys.stderr)
        return 1
    size = client.images.get(image_id).attrs.get("Size", 0)
    print(f"goldfish images: built {tag} ({image_id[:19]}, {size / 1e6:.0f} MB) in {time.monotonic() - started:.0f}s")
    return 0
