"""Helpers for backup tests: a project with real history, and its whole memory as plain data."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson

from goldfish.project import Project
from goldfish.store import integrity


def memory(project: Project) -> dict[str, Any]:
    """Everything a backup must bring back, as plain data: every document of every table of every
    partition (through the store's own reads), every event log line, and the dev repo's refs."""
    store = project.store
    out: dict[str, Any] = {}
    for name in integrity.list_partition_files(project.store_dir):
        if "." in name:  # a shard: read through its head partition's directory
            continue
        tables = orjson.loads((project.store_dir / f"{name}.json").read_bytes())
        for table in tables:
            if table in (integrity.LAST_TABLE, integrity.REGISTRY):
                continue
            table = table.removeprefix(integrity.DIR_PREFIX)
            docs = store.table(table, name).raw()
            out[f"{name}:{table}"] = {k: dict(v) for k, v in docs.items()}
    for log in sorted((project.store_dir / "events").glob("*.jsonl")):
        out[f"events:{log.stem}"] = store.read_events(log.stem)[0]
    refs = subprocess.run(["git", "-C", str(project.dev_path), "for-each-ref", "--format=%(refname) %(objectname)"],
                          capture_output=True, text=True, check=True).stdout
    out["refs"] = sorted(refs.splitlines())
    return out


def set_backups(root: Path, **values: Any) -> None:
    import yaml

    path = root / "goldfish.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("backups", {}).update(values)
    path.write_text(yaml.safe_dump(data))
