"""run() with a damaged records shard: the store error comes before sync_for_run, so no version is
created that no run records (the damage detection itself is the store's)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from goldfish.errors import StoreError
from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, file_stage, make_env


def _tags(dev: Path) -> list[str]:
    return subprocess.run(["git", "-C", str(dev), "tag", "--list"], capture_output=True, text=True,
                          check=True).stdout.split()


def test_a_half_written_records_shard_creates_no_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([file_stage("train")], {"train": WRITE_OUTPUTS})
    project = env.project
    project.workspaces.save_version("w1", "the pipeline before the first run")  # writes a checkpoint record
    shards = sorted((project.store_dir / "ws").glob("exp.records.*.json"))
    assert shards, sorted(p.name for p in (project.store_dir / "ws").iterdir())
    whole = shards[-1].read_bytes()
    shards[-1].write_bytes(whole[: len(whole) // 2])  # a torn shard, as a crash mid-write would leave
    (env.slot / "modules" / "train.py").write_text(WRITE_OUTPUTS + "\n# changed\n")  # a new version is due
    versions = project.store.table("versions", "ws/exp").ids()
    tags = _tags(project.dev_path)

    with pytest.raises(StoreError) as caught:
        env.project.runs.run("w1", reason=REASON, results_spec=SPEC)
    assert shards[-1].name in str(caught.value)
    fresh = env.project
    assert fresh.store.table("versions", "ws/exp").ids() == versions
    assert _tags(fresh.dev_path) == tags
