"""Cached virtual environments for local stages whose version has a ``requirements.txt``.

One environment per (hash of requirements.txt, Python version), built once under
``.goldfish/envs/<key>/`` and reused by every later run. ``uv`` is used when it is installed,
else ``python -m venv`` + pip. numpy (the stage SDK's one dependency) comes from Goldfish's own
environment through a ``.pth`` fallback unless the requirements install one; the SDK itself is put
on the path by the stage environment. A build happens in a temp directory renamed into place, so
a half-built environment is never used; concurrent runners wait on a file lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from goldfish.fsutil import atomic_write
from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from goldfish.project import Project

MARKER = "goldfish-env.json"
INSTALL_TIMEOUT = 1800
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class VenvFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Venv:
    key: str
    path: str
    python: str
    built: bool
    installer: str
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def env_key(requirements: bytes) -> str:
    version = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    return hashlib.sha256(version.encode() + b"\0" + requirements).hexdigest()[:16]


def _names(text: str) -> set[str]:
    out = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = _NAME_RE.match(line)
        if match:
            out.add(match.group(1).lower().replace("_", "-"))
    return out


def _numpy_fallback(project: Project, venv: Path) -> None:
    """The stage SDK needs numpy: a ``.pth`` line puts Goldfish's numpy *after* the venv's own
    site-packages, so a numpy the requirements installed (pinned, or pulled in by pandas…) wins,
    and a venv without one still imports the SDK — without installing numpy into every venv."""
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy is a Goldfish dependency
        return
    source = Path(numpy.__file__).resolve().parent.parent
    shelf = project.gf_dir / "envs" / f"_numpy-{numpy.__version__}"
    if not shelf.is_dir():
        tmp = shelf.with_name(f".{shelf.name}.{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        for entry in source.iterdir():
            if entry.name == "numpy" or entry.name.startswith("numpy.libs"):
                (tmp / entry.name).symlink_to(entry)
        try:
            tmp.rename(shelf)
        except OSError:  # another runner made it first
            shutil.rmtree(tmp, ignore_errors=True)
    for site in (venv / "lib").glob("python*/site-packages"):
        (site / "zz-goldfish-numpy.pth").write_text(str(shelf) + "\n")


def ensure_venv(project: Project, requirements: Path, *, note: Callable[[str], None]) -> Venv:
    from filelock import FileLock

    started = time.monotonic()
    data = requirements.read_bytes()
    key = env_key(data)
    root = project.gf_dir / "envs"
    root.mkdir(parents=True, exist_ok=True)
    target = root / key
    python = target / "bin" / "python"
    uv = shutil.which("uv")
    with FileLock(str(root / f"{key}.lock")):
        if (target / MARKER).is_file() and python.exists():
            return Venv(key=key, path=str(target), python=str(python), built=False,
                        installer=json.loads((target / MARKER).read_text()).get("installer", "?"),
                        seconds=time.monotonic() - started)
        shutil.rmtree(target, ignore_errors=True)
        tmp = root / f".{key}.building"
        shutil.rmtree(tmp, ignore_errors=True)
        log = project.gf_dir / "envs" / f"{key}.log"
        note(f"building the Python environment for requirements.txt (key {key}, {'uv' if uv else 'pip'}); log {log}")
        base = getattr(sys, "_base_executable", sys.executable)
        venv_python = str(tmp / "bin" / "python")
        try:
            if uv:
                steps = [[uv, "venv", "--python", base, str(tmp)],
                         [uv, "pip", "install", "--python", venv_python, "-r", str(requirements)]]
            else:
                # No pip inside the venv (ensurepip costs ~10 s): Goldfish's pip installs into it.
                steps = [[base, "-m", "venv", "--without-pip", str(tmp)],
                         [sys.executable, "-m", "pip", "--python", venv_python, "install",
                          "--disable-pip-version-check", "-r", str(requirements)]]
            with open(log, "w", encoding="utf-8") as out:
                for argv in steps:
                    out.write("$ " + " ".join(argv) + "\n")
                    out.flush()
                    try:
                        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              timeout=INSTALL_TIMEOUT, check=False)
                    except subprocess.TimeoutExpired:
                        raise VenvFailed(f"installing requirements.txt took longer than {INSTALL_TIMEOUT}s") from None
                    if proc.returncode != 0:
                        raise VenvFailed(_failure(log, argv, requirements))
            _numpy_fallback(project, tmp)
            atomic_write(tmp / MARKER, json.dumps({"key": key, "requirements": data.decode("utf-8", "replace"),
                                                   "python": sys.version.split()[0], "installer": "uv" if uv else "pip",
                                                   "created_at": now_iso()}))
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        seconds = time.monotonic() - started
        note(f"built the Python environment {key} in {seconds:.1f}s")
        # The venv records its own path in scripts; it was built at tmp, so run its python directly.
        return Venv(key=key, path=str(target), python=str(python), built=True, installer="uv" if uv else "pip",
                    seconds=seconds)


def _failure(log: Path, argv: list[str], requirements: Path) -> str:
    text = log.read_text(errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "error:" in ln.lower() or "×" in ln or "No matching" in ln]
    shown = " | ".join((errors or lines)[-6:])[:1500]
    reqs = ", ".join(sorted(_names(requirements.read_text(errors="replace")))) or "(none)"
    return (f"Installing the stage's requirements.txt failed ({Path(argv[0]).name} {' '.join(argv[1:3])}):"
            f" {shown}. Requirements: {reqs}. Fix the line the installer names in requirements.txt (pin a version"
            f" that exists for Python {sys.version_info.major}.{sys.version_info.minor}), then run again. Full log:"
            f" {log}")


def ensure_sdk_dir(project: Project) -> Path:
    """A copy of ``goldfish.io``/``goldfish.metrics`` (and nothing else of Goldfish) for the
    stage's path, so a requirements venv sees its own packages only."""
    from goldfish.images import recipes

    target = project.gf_dir / "sdk" / recipes.sdk_hash()[:16]
    if target.is_dir():
        return target
    tmp = target.with_name(f".{target.name}.{time.monotonic_ns()}")
    for path, rel in recipes.sdk_sources():
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(path.read_bytes())
    try:
        tmp.rename(target)
    except OSError:  # another runner made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target
