"""``goldfish restore``: rebuild a project (goldfish.yaml, dev repo, store) from a backup.

Every part is downloaded and checked against its sha256 before anything is written; the dev repo
is assembled beside its destination and renamed into place; the restored store is checked
(store/integrity.py) and every ref's objects are verified afterwards. A live project is only
replaced with ``force`` — and then moved aside, never deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from goldfish.backups.target import BackupError, Target, parse_target, project_target
from goldfish.fsutil import atomic_write
from goldfish.git.cmd import git


@dataclass
class RestorePlan:
    backup_id: str
    created_at: str
    source: str
    project_root: Path
    dev_path: Path
    writes: list[tuple[str, int]] = field(default_factory=list)  # (path, bytes)
    moved_aside: list[str] = field(default_factory=list)
    slots: list[str] = field(default_factory=list)
    dry_run: bool = False

    def render(self) -> str:
        head = "Would restore" if self.dry_run else "Restored"
        lines = [f"{head} backup {self.backup_id} ({self.created_at}) from {self.source}",
                 f"  project:  {self.project_root}", f"  dev repo: {self.dev_path}"]
        lines += [f"  moved aside: {p}" for p in self.moved_aside]
        lines += [f"  {'would write' if self.dry_run else 'wrote'} {p} ({n} bytes)" for p, n in self.writes]
        lines += [f"  slot {s} re-created from its last sync" for s in self.slots]
        if not self.dry_run:
            lines.append("Every part matched its sha256; the restored store and dev repo were verified. "
                         "Run outputs are not in backups: they stay where the runs stored them.")
        return "\n".join(lines)


def _locate(which: str, from_target: str | None, project: str | None, cwd: Path
            ) -> tuple[Target, dict[str, Any], Path | None]:
    """The target, the chosen manifest and the existing project root (if one was found)."""
    from goldfish.config import load_config
    from goldfish.errors import NotInitialized
    from goldfish.project import CONFIG_FILE, find_project_root

    root: Path | None = None
    try:
        root = find_project_root(project, cwd)
    except NotInitialized:
        if from_target is None:
            raise BackupError("No project here to find the backups of.",
                              fix="Pass --from <directory or gs://bucket/prefix/> (where the backups are) "
                                  "and --to <new project path>.") from None
    if from_target is not None:
        config = load_config(root / CONFIG_FILE) if root is not None else None
        target = parse_target(from_target, cwd, config)
    else:
        assert root is not None
        config = load_config(root / CONFIG_FILE)
        target = project_target(config, root, config.dev_repo(root) / ".goldfish")
    live = target.manifests()
    if not live:
        raise BackupError(f"There is no backup in {target.uri}.", fix="Point --from at the directory or "
                          "gs:// prefix that holds the backups (it contains manifests/ and blobs/).")
    if which == "latest":
        return target, live[-1], root
    for m in live:
        if m["backup_id"] == which:
            return target, m, root
    raise BackupError(f"No backup {which!r} in {target.uri}.",
                      fix=f"Use 'latest' or one of: {', '.join(m['backup_id'] for m in live[-8:])}.")


def fetch_parts(target: Target, manifest: dict[str, Any]) -> dict[str, bytes]:
    """Every file of the backup by name (store/…, events/<log>.jsonl, config/…, dev/…, git/<n>.bundle),
    each checked against its sha256 (and each log against the sha256 of the whole)."""
    from concurrent.futures import ThreadPoolExecutor

    shas = {part["blob"] for part in manifest["files"].values()}
    shas |= {c["blob"] for entry in manifest["logs"].values() for c in entry["chunks"]}
    shas |= {part["blob"] for part in manifest["git"]["bundles"]}
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="goldfish-restore-part") as pool:
        blobs = dict(zip(sorted(shas), pool.map(target.get_blob, sorted(shas)), strict=True))  # each verified
    out: dict[str, bytes] = {}
    for name, part in manifest["files"].items():
        out[name] = blobs[part["blob"]]
    for log, entry in manifest["logs"].items():
        data = b"".join(blobs[c["blob"]] for c in entry["chunks"])
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise BackupError(f"Event log {log} of backup {manifest['backup_id']} does not match its checksum.",
                              fix="Restore another backup (`goldfish restore <id>`).")
        out[f"events/{log}.jsonl"] = data
    for i, part in enumerate(manifest["git"]["bundles"]):
        out[f"git/{i:03d}.bundle"] = blobs[part["blob"]]
    return out


def _dev_path(manifest: dict[str, Any], root: Path) -> Path:
    path = Path(manifest.get("dev_repo_path") or f"{root.name}-dev").expanduser()
    return (path if path.is_absolute() else root.parent / path).resolve()


def restore(which: str = "latest", *, from_target: str | None = None, to: Path | None = None,
            project: str | None = None, force: bool = False, dry_run: bool = False,
            cwd: Path | None = None) -> RestorePlan:
    cwd = cwd or Path.cwd()
    target, manifest, found_root = _locate(which, from_target, project, cwd)
    root = Path(to).expanduser().resolve() if to is not None else found_root
    if root is None:
        raise BackupError("Where should the project be restored?", fix="Pass --to <new project path>.")
    dev = _dev_path(manifest, root)
    parts = fetch_parts(target, manifest)  # verified before anything is written
    if root != found_root and _owner(dev) not in (None, root):
        # That dev repo belongs to another project (the original, restoring a copy beside it): the
        # copy gets its own, and its goldfish.yaml says so.
        dev = root.parent / f"{root.name}-dev"
        if _owner(dev) not in (None, root):
            raise BackupError(f"{dev} is the dev repo of another project ({_owner(dev)}).",
                              fix="Restore with --to <a directory whose name is not taken>.")
        parts["config/goldfish.yaml"] = _set_dev_repo_path(parts["config/goldfish.yaml"], dev.name)
    plan = RestorePlan(manifest["backup_id"], manifest["created_at"], target.uri, root, dev, dry_run=dry_run)
    for name, data in sorted(parts.items()):
        plan.writes.append((str(_dest(name, root, dev)), len(data)))
    live = [p for p in (root / "goldfish.yaml", dev) if p.exists()]
    if dry_run:
        return plan
    if live and not force:
        raise BackupError(f"{', '.join(map(str, live))} already exist(s): restoring would replace a live project.",
                          fix="Pass --force to move the current files aside and restore, or --to <another path>.")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    building = dev.with_name(f".{dev.name}.restoring-{manifest['backup_id']}")
    shutil.rmtree(building, ignore_errors=True)
    try:
        _build_dev_repo(building, manifest, parts, root)
        for path in live:
            aside = path.with_name(f"{path.name}.replaced-{stamp}")
            os.rename(path, aside)
            plan.moved_aside.append(str(aside))
        dev.parent.mkdir(parents=True, exist_ok=True)
        os.rename(building, dev)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write(root / "goldfish.yaml", parts["config/goldfish.yaml"])
    plan.slots = _recreate_slots(root)
    return plan


def _owner(dev: Path) -> Path | None:
    """The project root a dev repo belongs to (its marker), or None when there is no dev repo there."""
    from goldfish.init import MARKER

    if not dev.exists():
        return None
    try:
        return Path(orjson.loads((dev / ".goldfish" / MARKER).read_bytes())["project_root"]).resolve()
    except (OSError, ValueError, KeyError, TypeError):
        return dev  # something else lives there: never ours to replace


def _set_dev_repo_path(config: bytes, name: str) -> bytes:
    import re

    text, n = re.subn(r"""(?m)^(dev_repo_path:[ \t]*)(?:"[^"\n]*"|'[^'\n]*'|[^\s#]+)""", lambda m: m.group(1) + json.dumps(name),
                      config.decode())
    if n != 1:
        raise BackupError("The backup's goldfish.yaml has no single top-level dev_repo_path line to point at "
                          f"the new dev repo {name}.", fix="Restore with --force into the original location.")
    return text.encode()


def _dest(name: str, root: Path, dev: Path) -> Path:
    if name == "config/goldfish.yaml":
        return root / "goldfish.yaml"
    if name.startswith("dev/"):
        return dev / name[len("dev/"):]
    if name.startswith("git/"):  # indexed into the dev repo's object store (git index-pack)
        return dev / ".git" / "objects" / f"pack (from {name[len('git/'):]})"
    if name.startswith("events/"):
        return dev / ".goldfish" / "store" / name
    return dev / ".goldfish" / name  # store/...


def _build_dev_repo(dev: Path, manifest: dict[str, Any], parts: dict[str, bytes], root: Path) -> None:
    from goldfish.init import DEV_GITIGNORE, DEV_IDENTITY, MARKER
    from goldfish.store import Store, integrity

    dev.mkdir(parents=True)
    git(dev, "init", "-q", "-b", "main")
    git(dev, "config", "user.name", DEV_IDENTITY[0])
    git(dev, "config", "user.email", DEV_IDENTITY[1])
    git(dev, "config", "commit.gpgsign", "false")
    git(dev, "config", "core.hooksPath", "/dev/null")
    for name in sorted(n for n in parts if n.startswith("git/")):
        data = parts[name]
        end = data.index(b"\n\n") + 2  # the bundle header ends with an empty line; the pack follows
        git(dev, "index-pack", "--stdin", input=data[end:], timeout=3600)
    refs = manifest["git"]["refs"]
    if refs:
        git(dev, "update-ref", "--stdin", input="".join(f"update {r} {s}\n" for r, s in refs.items()).encode())
    git(dev, "symbolic-ref", "HEAD", manifest["git"].get("head") or "refs/heads/main")
    for _ref, sha in refs.items():
        git(dev, "cat-file", "-e", sha)
    if refs:
        git(dev, "fsck", "--connectivity-only", "--no-dangling", "--no-progress", timeout=3600)
    (dev / ".gitignore").write_text(DEV_GITIGNORE)
    gf = dev / ".goldfish"
    for sub in ("store/events", "runs", "objects", "backups"):
        (gf / sub).mkdir(parents=True, exist_ok=True)
    atomic_write(gf / MARKER, orjson.dumps({"project_root": str(root), "project_name": manifest["project_name"]}))
    for name, data in parts.items():
        if name.startswith(("store/", "events/")):
            atomic_write(_dest(name, root, dev), data, durable=False)
        elif name.startswith("dev/"):
            atomic_write(dev / name[len("dev/"):], data, durable=False)
    os.sync()
    damage = integrity.check_store(Store(gf / "store"))
    if damage:
        raise BackupError(f"The restored store of backup {manifest['backup_id']} does not check out: "
                          f"{'; '.join(d.render() for d in damage[:5])}.",
                          fix="Restore an older backup (`goldfish restore <id>`); nothing was replaced.")


def _recreate_slots(root: Path) -> list[str]:
    """Mounted slots come back as of their last sync (unsaved edits are not in backups)."""
    from goldfish.project import Project
    from goldfish.workspaces.slot_dirs import write_marker

    project = Project.open(root)
    done = []
    for row in project.store.table("mounts").docs():
        slot_dir = project.slot_path(row["slot"])
        if slot_dir.exists():
            continue
        tmp = slot_dir.with_name(f".{slot_dir.name}.restoring")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        project.dev_repo.archive_into(row["head"], tmp)
        os.rename(tmp, slot_dir)
        write_marker(slot_dir, row)
        project.dirty.seed(row["slot"], row, project.dev_repo.ls_tree(row["head"]))
        done.append(row["slot"])
    return done
