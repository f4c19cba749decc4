"""Building images on the local daemon: the CPU base from Debian packages (debootstrap + import),
Dockerfile builds (GPU base, project images), each step logged so a failure names its step.

Nothing half-built is left tagged: a Dockerfile build tags only on success, and the CPU base is
imported under its final tag only after every step before it succeeded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from goldfish.errors import GoldfishError
from goldfish.images import recipes

PULL_FIX = ("The GPU base image starts FROM a public CUDA image; build it on a machine that can pull from"
            " public registries (or with backend='cloud' once available), push it to your registry, then"
            " set docker.base_images.gpu to that image.")


class BuildFailed(GoldfishError):
    """A build step failed: ``step`` names it, ``message`` carries the error."""

    kind = "build_failed"

    def __init__(self, step: str, message: str, *, fix: str | None = None):
        super().__init__(f"step {step!r} failed: {message}", fix=fix)
        self.step = step


class BuildLog:
    """The build's log file plus who wants to hear about progress (MCP progress, a run's log)."""

    def __init__(self, path: Path | None, on_line: Callable[[str], None] | None = None,
                 on_step: Callable[[str, int, int], None] | None = None):
        self.path = path
        self.on_line = on_line
        self.on_step = on_step
        self.step = "start"
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def line(self, text: str) -> None:
        text = text.rstrip("\n")
        if self._file is not None:
            self._file.write(text + "\n")
            self._file.flush()
        if self.on_line is not None:
            self.on_line(text)

    def begin(self, step: str, number: int, total: int) -> None:
        self.step = step
        self.line(f"--- step {number}/{total}: {step}")
        if self.on_step is not None:
            self.on_step(step, number, total)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _run(log: BuildLog, argv: list[str], **kwargs: Any) -> None:
    """Run a command, streaming its output into the log; BuildFailed with its last lines on error."""
    log.line("$ " + " ".join(argv))
    tail: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          text=True, errors="replace", **kwargs) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.line(line)
            tail = [*tail[-9:], line.rstrip()]
        code = proc.wait()
    if code != 0:
        raise BuildFailed(log.step, f"{argv[0]} exited with {code}: " + " | ".join(tail[-5:]))


def debootstrap_cache() -> Path:
    root = os.environ.get("GOLDFISH_DEBOOTSTRAP_CACHE") or str(Path.home() / ".cache" / "goldfish" / "debootstrap")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_cpu_base(client: Any, tag: str, log: BuildLog, *, workdir: Path | None = None) -> str:
    """debootstrap a Debian root filesystem with Python + numpy + a venv, then import it as ``tag``.

    Needs root and the debootstrap package (scripts/setup-docker.sh installs it). Returns the id."""
    recipe = recipes.cpu_base_recipe()
    total = 4
    log.begin("check tools", 1, total)
    if os.geteuid() != 0:
        raise BuildFailed(log.step, "building the CPU base image needs root (debootstrap creates device files"
                          " and chroots).", fix="Run scripts/setup-docker.sh as root (or with sudo).")
    if shutil.which("debootstrap") is None:
        raise BuildFailed(log.step, "debootstrap is not installed.",
                          fix="apt-get install debootstrap (scripts/setup-docker.sh does it).")
    tmp = Path(tempfile.mkdtemp(prefix="goldfish-rootfs-", dir=workdir))
    try:
        root = tmp / "root"
        log.begin("debootstrap", 2, total)
        _run(log, ["debootstrap", f"--variant={recipe['variant']}", f"--cache-dir={debootstrap_cache()}",
                   f"--include={','.join(recipe['packages'])}", recipe["suite"], str(root), recipes.MIRROR])
        log.begin("python venv", 3, total)
        _run(log, ["chroot", str(root), "python3", "-m", "venv", "--system-site-packages", recipe["venv"]])
        _run(log, ["chroot", str(root), f"{recipe['venv']}/bin/python", "-c", "import numpy, sys; print(sys.version)"])
        for junk in ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale",
                     "usr/share/info"):
            shutil.rmtree(root / junk, ignore_errors=True)
            (root / junk).mkdir(parents=True, exist_ok=True)
        (root / "app").mkdir(exist_ok=True)
        log.begin("docker import", 4, total)
        archive = tmp / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            for entry in sorted(root.iterdir()):
                tar.add(entry, arcname=entry.name)
        repo, _, version = tag.partition(":")
        changes = [f"ENV {k}={v}" for k, v in recipe["env"].items()]
        changes += ["WORKDIR /app", f"LABEL {recipes.LABEL_IMAGE}={recipes.base_name('cpu')}",
                    f"LABEL {recipes.LABEL_HASH}={recipes.base_content_hash('cpu')}"]
        try:
            client.api.import_image_from_file(str(archive), repository=repo, tag=version, changes=changes)
        except Exception as exc:
            raise BuildFailed(log.step, f"the daemon refused the import: {exc}") from None
        image = client.images.get(tag)
        log.line(f"imported {tag} ({image.id}, {image.attrs.get('Size', 0) / 1e6:.0f} MB)")
        return str(image.id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_dockerfile(client: Any, context: Path, tag: str, log: BuildLog, *, no_cache: bool = False,
                     network: bool = True) -> str:
    """``docker build`` of ``context`` (streamed into the log); tags ``tag`` only on success."""
    total_steps = sum(1 for line in (context / "Dockerfile").read_text().splitlines()
                      if line.strip() and not line.lstrip().startswith("#"))
    step = 0
    log.begin("start build", 0, total_steps)
    last_error: str | None = None
    image_id: str | None = None
    try:
        # Builds may reach package indexes (pip); the daemon's default bridge may not exist, so
        # build steps use the host network. Stages themselves run with --network none.
        stream = client.api.build(path=str(context), tag=None, rm=True, forcerm=True, nocache=no_cache,
                                  decode=True, network_mode="host" if network else "none", pull=False)
        for chunk in stream:
            text = chunk.get("stream")
            if text:
                for line in text.splitlines():
                    if line.startswith("Step ") and "/" in line:
                        step += 1
                        log.step = line.split(":", 1)[1].strip()[:200] if ":" in line else line
                        if log.on_step is not None:
                            log.on_step(log.step, step, total_steps)
                    log.line(line)
            if "error" in chunk:
                last_error = str(chunk.get("error") or "").strip()
                log.line("ERROR: " + last_error)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except Exception as exc:
        if "pull access denied" in str(exc) or "not found" in str(exc).lower():
            raise BuildFailed(log.step, str(exc), fix=PULL_FIX) from None
        raise BuildFailed(log.step, str(exc)) from None
    if last_error is not None:
        fix = PULL_FIX if ("pull access denied" in last_error or "manifest" in last_error
                           or "no such host" in last_error) else None
        raise BuildFailed(log.step, last_error, fix=fix)
    if image_id is None:
        raise BuildFailed(log.step, "the daemon reported no image id")
    repo, _, version = tag.partition(":")
    client.api.tag(image_id, repo, version)
    log.line(f"built {tag} ({image_id})")
    return image_id


def wait_for_daemon(client: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.ping()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def remove_quietly(client: Any, ref: str) -> None:
    with contextlib.suppress(Exception):
        client.images.remove(ref, noprune=False)
