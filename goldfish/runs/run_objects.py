"""A run's objects in object storage: ``runs/<stage run id>/outputs/`` (what the stage wrote),
``runs/<id>/app.tar.gz`` and ``runs/<id>/inputs/`` (what a cloud worker stages), and the helpers
that move them.

Local runs keep their outputs in the run dir; with ``storage.backend: gcs`` they are also copied to
the bucket when the stage ends, and each output entry gains its ``uri``. Cloud runs write straight to
the bucket; their output entries point at ``gs://`` (a directory output at its prefix, ending in '/').
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.runs.inputs import FILE_EXTENSIONS

if TYPE_CHECKING:
    from goldfish.pipelines.model import Stage
    from goldfish.project import Project
    from goldfish.storage import ObjectStorage


def run_prefix(run_id: str) -> str:
    return f"runs/{run_id}/"


def outputs_prefix(run_id: str) -> str:
    return f"runs/{run_id}/outputs/"


def upload_outputs(store: ObjectStorage, run_id: str, outputs: dict[str, dict[str, Any]]) -> None:
    """Copy every written output to ``runs/<id>/outputs/`` and record its ``uri`` on the entry."""
    prefix = outputs_prefix(run_id)
    for out in outputs.values():
        if not out.get("exists"):
            continue
        path = Path(out["location"])
        key = prefix + path.name
        if path.is_dir():
            store.put_dir(path, key)
            out["uri"] = store.uri(key) + "/"
        else:
            out["uri"] = store.put_file(path, key).uri


def remote_outputs(store: ObjectStorage, run_id: str, stage: Stage) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """``collect_outputs`` for a stage that wrote into the bucket: one listing of its prefix."""
    prefix = outputs_prefix(run_id)
    sizes: dict[str, int] = {}
    for info in store.list(prefix):
        sizes[info.key[len(prefix):]] = info.size
    found: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for name, spec in stage.outputs.items():
        ext = FILE_EXTENSIONS.get(spec.type)
        candidates = ([f"{name}{ext}"] if ext else []) + [name]
        hit, size = None, None
        for cand in candidates:
            if cand in sizes:
                hit, size = store.uri(prefix + cand), sizes[cand]
                break
            under = [s for rel, s in sizes.items() if rel.startswith(cand + "/")]
            if under:
                hit, size = store.uri(prefix + cand) + "/", sum(under)
                break
        found[name] = {
            "location": hit or store.uri(prefix + candidates[0]),
            "uri": hit,
            "type": spec.type,
            "format": spec.format,
            "exists": hit is not None,
            "size_bytes": size,
            "artifact": spec.artifact,
        }
        if hit is None:
            missing.append(f"declared output {name!r} ({spec.type}) was not written (expected outputs/"
                           f"{' or '.join(candidates)} in {store.uri(prefix)})")
    return found, missing


def collect_outputs(project: Project, run_id: str, stage: Stage, outputs_dir: Path, *, remote: bool,
                    note: Callable[[str], None]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """A finished stage's declared outputs: in the bucket for a cloud run, else in the run dir (then
    copied to the bucket when ``storage.backend`` is gcs)."""
    from goldfish.runs import postrun

    if remote:
        store = project.bucket
        assert store is not None  # a cloud backend needs gcs.bucket (config validation)
        return remote_outputs(store, run_id, stage)
    outputs, missing = postrun.collect_outputs(stage, outputs_dir)
    if project.storage.kind == "gcs":
        note(f"copying outputs to {project.storage.uri(outputs_prefix(run_id))}")
        upload_outputs(project.storage, run_id, outputs)
    return outputs, missing


def fetcher(project: Project, note: Callable[[str], None]) -> Callable[[str, int | None], Path]:
    """``fetch(uri, generation)`` for staging a gs:// input on this machine (cached by generation)."""
    from goldfish.storage import materialize

    def fetch(uri: str, generation: int | None) -> Path:
        note(f"staging {uri} (cached by generation in {project.cache_dir})")
        return materialize(project.config, project.cache_dir, uri, generation=generation)

    return fetch

