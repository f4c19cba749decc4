"""``goldfish init`` / ``initialize_project``: create a project, its dev repo and store.

Everything is checked before anything is written; if a write fails midway,
what this call created is removed again. goldfish.yaml is written last, so its
presence means "initialized".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from pydantic import BaseModel, Field

from goldfish import names
from goldfish.errors import Conflict, GoldfishError, InvalidInput
from goldfish.fsutil import atomic_write
from goldfish.git.cmd import git
from goldfish.project import CONFIG_FILE

MARKER = "PROJECT.json"
DEV_GITIGNORE = ".goldfish/\nSTATE.md\n"
DEV_IDENTITY = ("Goldfish", "goldfish@localhost")


class InitResult(BaseModel):
    created: bool = Field(description="False when the project was already initialized (nothing changed).")
    message: str = Field(description="What happened, in one sentence.")
    project_root: str = Field(description="Absolute path of the ML project (holds goldfish.yaml).")
    dev_repo: str = Field(description="Absolute path of the hidden dev repo.")
    config_file: str = Field(description="Path of goldfish.yaml.")
    state_file: str = Field(description="Path of the global STATE.md.")


def is_dev_repo(path: Path) -> bool:
    return (path / ".goldfish").is_dir() and (path / ".git").exists()


def _result(root: Path, dev: Path, created: bool, message: str) -> InitResult:
    return InitResult(
        created=created,
        message=message,
        project_root=str(root),
        dev_repo=str(dev),
        config_file=str(root / CONFIG_FILE),
        state_file=str(dev / "STATE.md"),
    )


def _marker(dev: Path) -> dict[str, str] | None:
    try:
        data = orjson.loads((dev / ".goldfish" / MARKER).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def init_project(path: Path | str, name: str | None = None) -> InitResult:
    """Initialize a Goldfish project at ``path`` (idempotent)."""
    root = Path(path).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise InvalidInput(f"{root} exists and is not a directory.", fix="Choose a directory path for the project.")
    for candidate in (root, *root.parents):
        if is_dev_repo(candidate):
            raise Conflict(
                f"{root} is inside the Goldfish dev repo {candidate}.",
                fix="Initialize the ML project directory itself (the dev repo's sibling), not the dev repo.",
            )
    for parent in root.parents:
        if (parent / CONFIG_FILE).is_file():
            raise Conflict(
                f"{root} is inside the existing Goldfish project {parent}.",
                fix=f"Use the project at {parent}, or initialize outside it.",
            )
    project_name = name if name is not None else root.name
    try:
        names.workspace_name(project_name)
    except InvalidInput as exc:
        raise InvalidInput(
            f"{project_name!r} cannot be a project name: {exc.message}",
            fix="Choose a name of letters, digits, '_' or '-' (CLI: --name NAME; initialize_project: project_name).",
        ) from exc

    config_path = root / CONFIG_FILE
    if config_path.exists():
        return _already_initialized(root, config_path, name)

    dev = root.parent / f"{project_name}-dev"  # what default_config_yaml writes
    if dev.exists() and any(dev.iterdir()):
        marker = _marker(dev)
        if marker is None or marker.get("project_root") != str(root):
            raise Conflict(
                f"The dev repo location {dev} already exists and does not belong to this project.",
                fix="Move it away, or pass --name with another project name.",
            )
    return _create(root, dev, project_name)


def _already_initialized(root: Path, config_path: Path, name: str | None) -> InitResult:
    from goldfish.config import load_config

    try:
        config = load_config(config_path)
    except GoldfishError as exc:
        raise Conflict(
            f"{config_path} exists but is not a valid Goldfish config ({exc.message}).",
            fix="It is not ours to overwrite: fix it, or move it away and run init again.",
        ) from exc
    if name is not None and config.project_name != name:
        raise Conflict(
            f"{config_path} belongs to project {config.project_name!r}, not {name!r}.",
            fix=f"Run without --name to keep {config.project_name!r}, or initialize elsewhere.",
        )
    dev = config.dev_repo(root)
    if not is_dev_repo(dev):
        raise Conflict(
            f"{config_path} exists but its dev repo {dev} is missing.",
            fix="Restore the dev repo (it holds all versions and records) or fix dev_repo_path in goldfish.yaml.",
        )
    return _result(root, dev, False, f"Project {config.project_name!r} is already initialized; nothing changed.")


def _create(root: Path, dev: Path, project_name: str) -> InitResult:
    from goldfish.config import default_config_yaml

    created: list[Path] = []
    try:
        for d in (root, dev):
            if not d.exists():
                d.mkdir(parents=True)
                created.append(d)
        workspaces = root / "workspaces"
        if not workspaces.exists():
            workspaces.mkdir()
            created.append(workspaces)
        _init_dev_repo(dev, root, project_name, created)
        from goldfish.store import Store

        Store(dev / ".goldfish" / "store")
        atomic_write(dev / "STATE.md", initial_state_md(project_name))
        atomic_write(root / CONFIG_FILE, default_config_yaml(project_name, dev.name))
    except BaseException:
        for p in reversed(created):
            shutil.rmtree(p, ignore_errors=True)
        raise
    return _result(root, dev, True, f"Initialized Goldfish project {project_name!r} (dev repo {dev}).")


def _init_dev_repo(dev: Path, root: Path, project_name: str, created: list[Path]) -> None:
    if not (dev / ".git").exists():
        created.append(dev / ".git")
        git(dev, "init", "-q", "-b", "main")
        # The dev repo carries its own identity: Goldfish must work with no global git config.
        git(dev, "config", "user.name", DEV_IDENTITY[0])
        git(dev, "config", "user.email", DEV_IDENTITY[1])
        git(dev, "config", "commit.gpgsign", "false")
        git(dev, "config", "core.hooksPath", "/dev/null")
        (dev / ".gitignore").write_text(DEV_GITIGNORE)
        git(dev, "add", ".gitignore")
        git(dev, "commit", "-q", "-m", f"Goldfish dev repo for {project_name}")
    gf = dev / ".goldfish"
    for sub in ("store", "runs", "objects", "backups"):
        (gf / sub).mkdir(parents=True, exist_ok=True)
    atomic_write(gf / MARKER, orjson.dumps({"project_root": str(root), "project_name": project_name}))


def initial_state_md(project_name: str) -> str:
    return (
        f"# {project_name}\n\n## Active Goal\nNot set. Create a workspace with a goal: "
        "create_workspace(name, goal, reason).\n\n## Workspaces\nNo workspace is mounted.\n\n"
        "## Recent Actions\n- project initialized\n"
    )
