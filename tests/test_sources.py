"""register_source, verify, manage_sources on real files (and a real GCS emulator)."""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goldfish.errors import Conflict, GoldfishError, InvalidInput, NotFound
from goldfish.project import Project
from tests.source_helpers import (
    REASON,
    csv_meta,
    gcs,
    gcs_emulator,
    new_project,
    npy_meta,
    put_run,
    snapshot,
    write_csv,
    write_npy,
)
from tests.test_metadata import SEED_DOCS

__all__ = ["gcs", "gcs_emulator"]  # fixtures used by name


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return new_project(tmp_path)


@pytest.fixture
def npy(tmp_path: Path) -> tuple[Path, int]:
    path = tmp_path / "data" / "features.npy"
    return path, write_npy(path)


def register(project: Project, name: str, path: Path | str, meta: dict[str, Any], **kw: Any) -> Any:
    return project.sources.register_source(
        name, str(path), kw.pop("description", meta["description"] if isinstance(meta, dict) else ""),
        kw.pop("reason", REASON), meta, **kw,
    )


# --------------------------------------------------------------------------- register


def test_register_local_records_location_hash_and_audit(project: Project, npy: tuple[Path, int]) -> None:
    path, size = npy
    result = register(project, "feat_v1", path, npy_meta(size), format="npy", size_bytes=size)
    row = project.store.table("sources").get_doc("feat_v1")
    assert row is not None
    assert row["location"] == str(path.resolve()) and row["uri_kind"] == "local"
    assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert row["size_bytes"] == size and row["mtime_ns"] == path.stat().st_mtime_ns
    assert row["created_by"] == "external" and row["status"] == "available" and row["metadata_status"] == "ok"
    assert row["lineage"] == {"parent_sources": [], "run_id": None, "output_name": None}
    assert row["metadata"] == npy_meta(size)
    assert result.source.integrity == "ok" and "dataset: feat_v1" in result.message
    events, _ = project.store.read_events("audit")
    assert events[-1]["op"] == "register_source" and events[-1]["reason"] == REASON
    assert events[-1]["details"]["sha256"] == row["sha256"]


def test_register_relative_path_and_file_uri(project: Project, tmp_path: Path) -> None:
    inside = project.root / "data" / "x.npy"
    size = write_npy(inside)
    register(project, "rel", "data/x.npy", npy_meta(size))
    assert project.sources.row("rel")["location"] == str(inside.resolve())  # type: ignore[index]
    register(project, "uri", f"file://{inside}", npy_meta(size))
    assert project.sources.row("uri")["location"] == str(inside.resolve())  # type: ignore[index]


def test_register_csv(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    size = write_csv(path)
    result = register(project, "table", path, csv_meta(size), format="csv")
    assert result.source.format == "csv" and result.source.size_bytes == size


@pytest.mark.parametrize("label", sorted(SEED_DOCS))
def test_seed_metadata_examples_register_verbatim(project: Project, tmp_path: Path, label: str) -> None:
    doc = copy.deepcopy(SEED_DOCS[label])
    fmt = doc["source"]["format"]
    path = tmp_path / f"seed.{fmt}"
    path.write_bytes(b"\0" * doc["source"]["size_bytes"])  # the seed's size: 123456 bytes
    name = "seed_" + "".join(c if c.isalnum() else "_" for c in label).strip("_")
    result = register(project, name, path, doc)
    assert project.sources.row(name)["metadata"] == doc  # type: ignore[index]
    # A long name list (768 feature names) is shortened for display only.
    long_list = any(len(a["feature_names"].get("values", [])) > 50 for a in doc["schema"].get("arrays", {}).values())
    assert result.source.metadata_truncated == long_list
    assert (result.source.metadata == doc) != long_list


def test_register_gcs_object(tmp_path: Path, gcs: Any) -> None:
    project = new_project(tmp_path, gcs=True)
    blob = gcs.bucket("test-bucket").blob("data/features.npy")
    local = tmp_path / "f.npy"
    size = write_npy(local)
    blob.upload_from_filename(str(local))
    result = register(project, "remote", "gs://test-bucket/data/features.npy", npy_meta(size))
    row = project.sources.row("remote")
    assert row is not None and row["uri_kind"] == "gcs" and row["location"] == "gs://test-bucket/data/features.npy"
    assert row["sha256"] is None and row["size_bytes"] == size and row["gcs_generation"]
    assert result.source.integrity == "unchecked"
    assert project.sources.verify("remote") is None
    info = project.sources.manage_sources("get", name="remote").source
    assert info is not None and info.integrity == "ok"
    gcs.bucket("test-bucket").blob("data/features.npy").upload_from_string(b"x" * size)  # same size, new bytes
    issue = project.sources.verify("remote")
    assert issue is not None and "changed since registration" in issue.message
    updated = project.sources.manage_sources("update", name="remote", metadata=npy_meta(size),
                                             reason="accepting the re-uploaded object")
    assert updated.source is not None and "new content recorded" in updated.message
    assert project.sources.verify("remote") is None
    gcs.bucket("test-bucket").blob("data/features.npy").delete()
    gone = project.sources.verify("remote")
    assert gone is not None and "missing" in gone.message


def _refused(project: Project, exc_type: type[GoldfishError], call: Any, *needles: str) -> GoldfishError:
    before = snapshot(project)
    with pytest.raises(exc_type) as info:
        call()
    text = str(info.value)
    for needle in needles:
        assert needle in text, text
    assert snapshot(project) == before
    return info.value


def test_register_errors_change_nothing(project: Project, npy: tuple[Path, int], tmp_path: Path) -> None:
    path, size = npy
    meta = npy_meta(size)
    _refused(project, InvalidInput, lambda: register(project, "bad name!", path, meta), "name", "Invalid source name")
    _refused(project, InvalidInput, lambda: register(project, "ok", path, meta, reason="too short"),
             "reason", "too short")
    (tmp_path / "folder").mkdir()
    _refused(project, InvalidInput, lambda: register(project, "ok", tmp_path / "folder", meta),
             "Directory sources are rejected")
    _refused(project, InvalidInput, lambda: register(project, "ok", tmp_path / "missing.npy", meta),
             "does not exist")
    wrong = npy_meta(size + 7)
    _refused(project, InvalidInput, lambda: register(project, "ok", path, wrong),
             f"is {size + 7} but", f"is {size} bytes", f"set size_bytes to {size}")
    _refused(project, InvalidInput,
             lambda: register(project, "ok", path, meta, description="A different description of the data"),
             "differs from the description argument")
    _refused(project, InvalidInput, lambda: register(project, "ok", path, meta, format="npz"),
             "source.format", "npz")
    _refused(project, InvalidInput, lambda: register(project, "ok", path, meta, size_bytes=size + 1),
             "size_bytes argument")
    _refused(project, InvalidInput, lambda: register(project, "ok", path, {**meta, "source": {
        **meta["source"], "size_bytes": None}}), "source.size_bytes", "required here")
    _refused(project, InvalidInput, lambda: register(project, "ok", "gs://test-bucket/x.npy", meta),
             "no gcs section", "gcs: {bucket:")
    _refused(project, InvalidInput, lambda: register(project, "ok", "s3://b/x.npy", meta), "not supported")
    register(project, "taken", path, meta)
    err = _refused(project, Conflict, lambda: register(project, "taken", path, meta),
                   "already exists", "manage_sources(action='update'")
    assert isinstance(err, Conflict)


def test_register_reports_every_problem_at_once(project: Project, tmp_path: Path) -> None:
    meta = npy_meta(10)
    meta["description"] = "short"
    meta["schema"]["arrays"]["features"]["feature_names"]["values"] = ["a"]
    err = _refused(project, InvalidInput, lambda: project.sources.register_source(
        "bad name!", str(tmp_path / "nope.npy"), "short", "brief", meta))
    fields = {e["field"] for e in err.details["errors"]}
    assert {"name", "reason", "gcs_path", "metadata.description",
            "metadata.schema.arrays.features.feature_names.values"} <= fields, fields


def test_gcs_errors_change_nothing(tmp_path: Path, gcs: Any) -> None:
    project = new_project(tmp_path, gcs=True)
    gcs.bucket("test-bucket").blob("folder/part-0.npy").upload_from_string(b"abc")
    meta = npy_meta(3)
    _refused(project, InvalidInput, lambda: register(project, "x", "gs://test-bucket/absent.npy", meta),
             "does not exist")
    _refused(project, InvalidInput, lambda: register(project, "x", "gs://test-bucket/folder", meta),
             "Directory sources are rejected")
    _refused(project, InvalidInput, lambda: register(project, "x", "gs://test-bucket/folder/", meta),
             "Directory sources are rejected")
    _refused(project, InvalidInput, lambda: register(project, "x", "gs://test-bucket/folder/part-0.npy",
                                                     npy_meta(4)), "is 3 bytes")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metadata=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
))
def test_any_invalid_metadata_is_refused_whole(project: Project, npy: tuple[Path, int], metadata: Any) -> None:
    path, _ = npy
    before = snapshot(project)
    with pytest.raises(InvalidInput) as info:
        project.sources.register_source("prop", str(path), "whatever description here", REASON, metadata)
    assert info.value.details["errors"]
    assert all(e["field"].startswith("metadata") for e in info.value.details["errors"])
    assert snapshot(project) == before


# --------------------------------------------------------------------------- verify


def test_verify_detects_changes(project: Project, npy: tuple[Path, int]) -> None:
    path, size = npy
    register(project, "feat", path, npy_meta(size))
    assert project.sources.verify("feat") is None
    os.utime(path, ns=(1, 1))  # touched, same bytes: still fine, and the new mtime is remembered
    assert project.sources.verify("feat") is None
    assert project.sources.row("feat")["mtime_ns"] == 1  # type: ignore[index]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, different content
    issue = project.sources.verify("feat")
    assert issue is not None
    assert "source feat changed since registration (sha" in issue.message
    assert "register it under a new name" in (issue.fix or "").lower() or "new name" in (issue.fix or "")
    assert "manage_sources(action='update'" in (issue.fix or "")
    assert project.sources.manage_sources("get", name="feat").source.integrity == "changed"  # type: ignore[union-attr]
    path.unlink()
    missing = project.sources.verify("feat")
    assert missing is not None and "missing" in missing.message
    assert project.sources.verify("nope") is not None


def test_schemas_and_resolution_for_the_run_engine(project: Project, npy: tuple[Path, int]) -> None:
    path, size = npy
    register(project, "feat", path, npy_meta(size))
    assert project.sources.source_schemas("feat") == npy_meta(size)
    assert project.sources.source_schemas("other") is None
    resolved = project.sources.resolve_for_input("feat")
    assert resolved == {"location": str(path.resolve()), "format": "npy", "metadata": npy_meta(size)}
    with pytest.raises(NotFound, match="Did you mean"):
        project.sources.resolve_for_input("fet")


# --------------------------------------------------------------------------- manage_sources


def test_update_refuses_format_change_and_accepts_new_content(project: Project, npy: tuple[Path, int],
                                                              tmp_path: Path) -> None:
    path, size = npy
    register(project, "feat", path, npy_meta(size))
    manage = project.sources.manage_sources
    csv = csv_meta(size)
    _refused(project, InvalidInput, lambda: manage("update", name="feat", metadata=csv, reason=REASON),
             "'csv'", "'npy'", "cannot change")
    _refused(project, InvalidInput, lambda: manage("update", name="feat", metadata=npy_meta(size)),
             "reason")
    _refused(project, InvalidInput, lambda: manage("update", name="feat", reason=REASON), "metadata")
    _refused(project, NotFound, lambda: manage("update", name="fet", metadata=npy_meta(size), reason=REASON),
             "Did you mean")
    size2 = write_npy(path, rows=20)
    _refused(project, InvalidInput, lambda: manage("update", name="feat", metadata=npy_meta(size), reason=REASON),
             f"is {size2} bytes")
    assert project.sources.verify("feat") is not None
    result = manage("update", name="feat", metadata=npy_meta(size2, rows=20), reason="accepting 20 rows now")
    assert result.source is not None and result.source.size_bytes == size2
    assert "new content recorded" in result.message
    assert project.sources.verify("feat") is None
    row = project.sources.row("feat")
    assert row is not None and row["history"][-1]["size_bytes"] == size and row["updated_at"]
    assert project.store.read_events("audit")[0][-1]["op"] == "update_source"


def test_delete_refused_while_a_run_reads_it(project: Project, npy: tuple[Path, int]) -> None:
    path, size = npy
    register(project, "feat", path, npy_meta(size))
    inputs = {"x": {"kind": "source", "source": "feat", "run_id": None, "signal": None,
                    "location": str(path), "type": "npy", "format": "npy"}}
    put_run(project, "stage-0000000a", state="running", inputs=inputs)
    manage = project.sources.manage_sources
    _refused(project, InvalidInput, lambda: manage("delete", name="feat", reason="x"), "too short")
    err = _refused(project, Conflict, lambda: manage("delete", name="feat", reason=REASON),
                   "stage-0000000a (running)", "Cancel them", "wait")
    assert err.details["runs"][0]["run_id"] == "stage-0000000a"
    put_run(project, "stage-0000000b", state="pending", inputs_override={"x": "feat"})
    put_run(project, "stage-0000000a", state="completed", inputs=inputs)
    _refused(project, Conflict, lambda: manage("delete", name="feat", reason=REASON), "stage-0000000b (pending)")
    put_run(project, "stage-0000000b", state="canceled", inputs_override={"x": "feat"})
    result = manage("delete", name="feat", reason=REASON)
    assert result.deleted == "feat" and path.exists()
    assert project.sources.row("feat") is None
    assert project.store.read_events("audit")[0][-1]["op"] == "delete_source"


def test_list_paginates_and_filters(project: Project, npy: tuple[Path, int]) -> None:
    path, size = npy
    for i in range(5):
        register(project, f"s{i}", path, npy_meta(size))
    manage = project.sources.manage_sources
    page = manage("list", limit=2)
    assert page.total == 5 and page.has_more and [s.name for s in page.sources or []] == ["s4", "s3"]
    last = manage("list", limit=2, offset=4)
    assert not last.has_more and [s.name for s in last.sources or []] == ["s0"]
    assert manage("list", created_by="external").total == 5
    assert manage("list", created_by="run").total == 0
    assert manage("list", status="available").total == 5
    for bad in ({"limit": 0}, {"offset": -1}, {"created_by": "someone"}, {"status": "lost"}):
        _refused(project, InvalidInput, lambda bad=bad: manage("list", **bad))
    _refused(project, InvalidInput, lambda: manage("get"), "needs name")


def test_lineage_of_external_source_lists_consumers(project: Project, npy: tuple[Path, int]) -> None:
    path, size = npy
    register(project, "feat", path, npy_meta(size))
    put_run(project, "stage-000000c1")
    put_run(project, "stage-000000c2", workspace="ws2", stage="eval")
    with project.store.transaction() as tx:  # what the run engine does when a run launches
        project.sources.record_consumption(tx, "feat", "stage-000000c1", "ws1", input_name="features", stage="train")
        project.sources.record_consumption(tx, "feat", "stage-000000c2", "ws2", input_name="data", stage="eval")
    lineage = project.sources.manage_sources("lineage", name="feat").lineage
    assert lineage is not None
    assert lineage.parents == [] and lineage.produced_by_run is None and lineage.output_name is None
    got = {(c.run_id, c.workspace, c.stage, c.state, c.input) for c in lineage.consumers}
    assert got == {("stage-000000c1", "ws1", "train", "completed", "features"),
                   ("stage-000000c2", "ws2", "eval", "completed", "data")}
    assert lineage.consumers_total == 2
    assert {c.sha256 for c in lineage.consumers} == {project.sources.row("feat")["sha256"]}  # type: ignore[index]
    assert len(project.sources.manage_sources("lineage", name="feat", limit=1).lineage.consumers) == 1  # type: ignore[union-attr]
    # Deleting the source drops its consumer index; a new source of the same name starts clean.
    project.sources.manage_sources("delete", name="feat", reason=REASON)
    register(project, "feat", path, npy_meta(size))
    assert project.sources.manage_sources("lineage", name="feat").lineage.consumers == []  # type: ignore[union-attr]


def _commit_pipeline(project: Project, files: dict[str, str]) -> str:
    """A commit in the dev repo holding ``files`` (what a run's version is), made with git plumbing."""
    import subprocess

    def git(*args: str, data: bytes | None = None) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t"}
        return subprocess.run(["git", "-C", str(project.dev_path), *args], input=data, env=env, check=True,
                              capture_output=True).stdout.decode().strip()

    entries: dict[str, list[str]] = {}
    for path, text in files.items():
        blob = git("hash-object", "-w", "--stdin", data=text.encode())
        folder, _, name = path.rpartition("/")
        entries.setdefault(folder, []).append(f"100644 blob {blob}\t{name}")
    root = entries.pop("", [])
    for folder, lines in entries.items():
        tree = git("mktree", data=("\n".join(lines) + "\n").encode())
        root.append(f"040000 tree {tree}\t{folder}")
    tree = git("mktree", data=("\n".join(root) + "\n").encode())
    return git("commit-tree", tree, "-m", "version")


def test_delete_refused_for_runs_not_prepared_yet(project: Project, npy: tuple[Path, int]) -> None:
    path, size = npy
    register(project, "feat", path, npy_meta(size))
    reads = "stages:\n  - name: train\n    inputs:\n      x: {dataset: feat, schema: null}\n"
    other = "stages:\n  - name: train\n    inputs:\n      x: {dataset: elsewhere, schema: null}\n"
    sha = _commit_pipeline(project, {"pipeline.yaml": other, "pipelines/alt.yaml": reads})
    manage = project.sources.manage_sources
    with project.store.transaction() as tx:
        tx.table("pipeline_runs", "ws/ws1").put("prun-00000001", {"pipeline": None})
        tx.table("pipeline_runs", "ws/ws1").put("prun-00000002", {"pipeline": "alt"})
    put_run(project, "stage-0000000d", state="pending", sha=sha)  # default pipeline: reads another source
    put_run(project, "stage-0000000e", state="preparing", sha=sha, pipeline_run_id="prun-00000002")
    err = _refused(project, Conflict, lambda: manage("delete", name="feat", reason=REASON),
                   "stage-0000000e (preparing)")
    assert [u["run_id"] for u in err.details["runs"]] == ["stage-0000000e"]
    # An override replaces the dataset input: the run no longer reads feat.
    put_run(project, "stage-0000000e", state="preparing", sha=sha, pipeline_run_id="prun-00000002",
            inputs_override={"x": "/data/other.npy"})
    assert manage("delete", name="feat", reason=REASON).deleted == "feat"


def test_state_md_counts_sources(project: Project, npy: tuple[Path, int]) -> None:
    pytest.importorskip("goldfish.journal.state_md", reason="STATE.md arrives with the workspaces service")
    path, size = npy
    register(project, "feat", path, npy_meta(size))
    register(project, "feat2", path, npy_meta(size))
    assert "## Data Sources\n2 registered" in project.state_md_path.read_text()
    project.sources.manage_sources("delete", name="feat2", reason=REASON)
    assert "## Data Sources\n1 registered" in project.state_md_path.read_text()
