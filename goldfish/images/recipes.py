"""What goes into each image, and the content-addressed tag that names it.

Two layers: base images ``goldfish-base-cpu`` / ``goldfish-base-gpu`` (shipped recipes) and
project images ``<project>-cpu`` / ``<project>-gpu`` = base + ``docker.extra_packages`` + the
version's ``requirements.txt`` + an optional ``Dockerfile.cpu``/``Dockerfile.gpu`` from the
workspace + the stage SDK. A tag is a hash of everything that went into the build, so an
unchanged environment always maps to an image that already exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import goldfish

ImageType = Literal["cpu", "gpu"]
Target = Literal["base", "project"]
IMAGE_TYPES: tuple[str, ...] = ("cpu", "gpu")
TARGETS: tuple[str, ...] = ("base", "project")

RECIPE_VERSION = 1
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
VENV = "/opt/goldfish/venv"
SDK_DIR = "/opt/goldfish/sdk"
LABEL_IMAGE = "dev.goldfish.image"
LABEL_HASH = "dev.goldfish.content_hash"
# The CPU base: a Debian root filesystem (debootstrap, no registry pull) with Python, numpy and a
# venv that sees Debian's packages, so project layers can pip install without touching the system.
CPU_DEBS = ("python3", "python3-numpy", "python3-venv", "python3-pip", "ca-certificates")
PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_ENV = {
    "PATH": PATH,
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_CACHE_DIR": "1",
}
GPU_FROM = "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"
GPU_TORCH = "torch==2.9.1"
CA_FILE = "build-ca.crt"
SDK_FILES = ("goldfish/__init__.py", "goldfish/io.py", "goldfish/metrics.py")
PACKAGE_ROOT = Path(goldfish.__file__).resolve().parent.parent

_REPO_RE = re.compile(r"[^a-z0-9._-]+")


def digest(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def base_name(image_type: str) -> str:
    return f"goldfish-base-{image_type}"


def project_repo(project_name: str, image_type: str) -> str:
    """``<project>-<type>``, folded to what a Docker repository name allows."""
    slug = _REPO_RE.sub("-", project_name.lower()).strip("-._") or "project"
    return f"{slug}-{image_type}"


# ---------------------------------------------------------------------------------- base images
def cpu_base_recipe(extra_debs: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"recipe": RECIPE_VERSION, "kind": "rootfs", "suite": SUITE, "variant": "minbase",
            "packages": sorted({*CPU_DEBS, *extra_debs}), "venv": VENV, "env": IMAGE_ENV}


def gpu_base_dockerfile() -> str:
    """The GPU base (CUDA runtime + torch + the same venv layout). Needs a machine that can pull
    ``GPU_FROM`` from a public registry."""
    env = " ".join(f"{k}={v}" for k, v in IMAGE_ENV.items())
    return (
        f"FROM {GPU_FROM}\n"
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n"
        "      python3 python3-venv python3-pip ca-certificates && rm -rf /var/lib/apt/lists/*\n"
        f"RUN python3 -m venv --system-site-packages {VENV}\n"
        f"ENV {env}\n"
        f"RUN pip install {GPU_TORCH} numpy pandas scikit-learn\n"
        f"LABEL {LABEL_IMAGE}=goldfish-base-gpu\n"
    )


def cpu_base_description(recipe: dict[str, Any]) -> str:
    """The CPU base's effective build, written as the Dockerfile it is equivalent to."""
    env = " ".join(f"{k}={v}" for k, v in recipe["env"].items())
    return (
        f"# debootstrap --variant={recipe['variant']} --include={','.join(recipe['packages'])} {recipe['suite']}"
        f" {MIRROR}\n"
        f"# then, in the root filesystem: python3 -m venv --system-site-packages {recipe['venv']}\n"
        "# then `docker import` of that filesystem with:\n"
        f"ENV {env}\nWORKDIR /app\nLABEL {LABEL_IMAGE}=goldfish-base-cpu\n"
    )


def base_content_hash(image_type: str) -> str:
    recipe = cpu_base_recipe() if image_type == "cpu" else {"recipe": RECIPE_VERSION,
                                                             "dockerfile": gpu_base_dockerfile()}
    return digest(recipe)


def base_tag(image_type: str) -> str:
    """``goldfish-base-<type>:r<hash>``: the shipped recipe's image."""
    return f"{base_name(image_type)}:r{base_content_hash(image_type)[:12]}"


# ------------------------------------------------------------------------------- project images
@dataclass
class ProjectInputs:
    """Everything a project image is built from (its hash is the tag)."""

    image_type: str
    base_ref: str  # the base image reference used in FROM
    base_id: str  # the base image's id on the daemon (a rebuilt base changes every project tag)
    extra_packages: list[str] = field(default_factory=list)
    requirements: str | None = None
    user_dockerfile: str | None = None
    sdk_hash: str = ""

    def content_hash(self) -> str:
        return digest({"recipe": RECIPE_VERSION, "type": self.image_type, "base_id": self.base_id,
                       "extra": self.extra_packages, "requirements": self.requirements,
                       "dockerfile": self.user_dockerfile, "sdk": self.sdk_hash})


def sdk_sources() -> list[tuple[Path, str]]:
    """(host file, path inside the SDK dir) of every file ``goldfish.io``/``goldfish.metrics`` need."""
    out = [(PACKAGE_ROOT / rel, rel) for rel in SDK_FILES]
    sdk = PACKAGE_ROOT / "stage_sdk"
    out += [(p, f"stage_sdk/{p.name}") for p in sorted(sdk.glob("*.py"))]
    return out


_sdk_cache: dict[tuple[tuple[str, int, int], ...], str] = {}


def sdk_hash() -> str:
    """Hash of the SDK files (cached on their size and mtime)."""
    files = sdk_sources()
    key = tuple((str(p), (st := p.stat()).st_size, st.st_mtime_ns) for p, _rel in files)
    found = _sdk_cache.get(key)
    if found is None:
        h = hashlib.sha256()
        for path, rel in files:
            h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
        found = _sdk_cache[key] = h.hexdigest()
    return found


def user_dockerfile_lines(text: str, image_type: str) -> list[str]:
    """The instructions of a workspace ``Dockerfile.<type>`` to append after the generated layers.

    Raises ValueError naming the rule when the file cannot be combined: a ``FROM`` must name the
    Goldfish base image (it is replaced by the resolved base), and ``COPY``/``ADD`` are refused
    (the build context holds only the environment; code reaches the container under /app)."""
    out: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        word = line.split(None, 1)[0].upper() if line and not line.startswith("#") else ""
        if word == "FROM":
            image = line.split()[1] if len(line.split()) > 1 else ""
            if not image.split(":")[0].endswith(base_name(image_type)):
                raise ValueError(f"Dockerfile.{image_type}:{number}: FROM {image} — a project image always"
                                 f" builds on {base_name(image_type)}; write FROM {base_name(image_type)}"
                                 " (or no FROM) and put your changes in RUN lines.")
            continue
        if word in ("COPY", "ADD"):
            raise ValueError(f"Dockerfile.{image_type}:{number}: {word} is not supported — the build"
                             " context holds only requirements; code reaches the container under /app."
                             " Install packages with RUN pip install ….")
        out.append(raw)
    return out


def host_ca_bundle() -> Path | None:
    """The CA bundle this machine's pip trusts (a proxy's CA lives there), lent to pip in builds."""
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


def project_dockerfile(inputs: ProjectInputs, *, ca_bundle: bool = False) -> str:
    lines = [f"FROM {inputs.base_ref}"]
    if ca_bundle and (inputs.extra_packages or inputs.requirements is not None):
        # Build-time trust only (not part of the content hash): pip reaches the index the way
        # this machine does, e.g. through a proxy with its own CA.
        lines += [f"COPY {CA_FILE} /opt/goldfish/build-ca.crt", "ENV PIP_CERT=/opt/goldfish/build-ca.crt"]
    if inputs.extra_packages:
        args = " ".join(json.dumps(p) for p in inputs.extra_packages)
        lines.append(f"RUN pip install {args}")
    if inputs.requirements is not None:
        lines += ["COPY requirements.txt /opt/goldfish/requirements.txt",
                  "RUN pip install -r /opt/goldfish/requirements.txt"]
    if inputs.user_dockerfile:
        lines += ["# --- Dockerfile." + inputs.image_type, *user_dockerfile_lines(inputs.user_dockerfile,
                                                                               inputs.image_type)]
    lines += [f"COPY sdk {SDK_DIR}", f"LABEL {LABEL_HASH}={inputs.content_hash()}"]
    return "\n".join(lines) + "\n"


def write_project_context(inputs: ProjectInputs, context: Path) -> None:
    """The build context: Dockerfile, requirements.txt, the SDK files (and the host's CA bundle)."""
    context.mkdir(parents=True, exist_ok=True)
    ca = host_ca_bundle()
    if ca is not None:
        (context / CA_FILE).write_bytes(ca.read_bytes())
    (context / "Dockerfile").write_text(project_dockerfile(inputs, ca_bundle=ca is not None))
    if inputs.requirements is not None:
        (context / "requirements.txt").write_text(inputs.requirements)
    for path, rel in sdk_sources():
        target = context / "sdk" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
