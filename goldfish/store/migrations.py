"""Store schema steps run once, under the project lock, when a store with an older stamp is opened.

Schema 2 → 3, **one result per pipeline run** (``goldfish.records.roles``): every pipeline run gets
``result_stage`` / ``result_run_id``, every stage run and run record a ``role`` (``result`` or
``supporting``). The result stage of a stored run is the last stage (in run order) that logged the
primary metric, else the last stage. A supporting stage run that was finalized with a value (a
``prun-…`` finalization copied the experiment's value onto every stage) keeps that value in its
``results_history`` and becomes ``finalized (supporting prun-…)`` with no value of its own.

Schema 3 → 4, **the history index** (``goldfish.records.index``): each workspace gets the small
derived rows list_history, the finalization queue and the trend read, built from its records and runs;
and the id lookups ``run_index`` / ``record_index`` (one row per run and record ever made) move out of
the project partition into shards, so the partition every call reads stops growing with the history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from goldfish.store import Store, Transaction

RESULT, SUPPORTING = "result", "supporting"


def _logged(run: Mapping[str, Any], metric: str | None) -> bool:
    auto = run.get("results_auto") or {}
    value = auto.get("value")
    if auto.get("metric_logged") or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return True
    return bool(metric) and metric in (run.get("metrics_summary") or {})


def result_stage_of(prun: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The result stage of a stored pipeline run (see the module docstring)."""
    stages = [s for s in prun.get("stages") or [] if (prun.get("stage_runs") or {}).get(s)]
    if not stages:
        return None
    spec = prun.get("results_spec") or {}
    declared = spec.get("stage")
    if declared in stages:
        return str(declared)
    metric = spec.get("primary_metric")
    ids = prun.get("stage_runs") or {}
    for stage in reversed(stages):
        if _logged(runs.get(ids[stage]) or {}, metric):
            return str(stage)
    return str(stages[-1])


def _supporting_fields(run: Mapping[str, Any], prun_id: str, result_run_id: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"role": SUPPORTING}
    if run.get("results_status") == "finalized":
        history = list(run.get("results_history") or [])
        if run.get("results_final"):
            history.append({"results": run["results_final"], "ml_outcome": run.get("ml_outcome"),
                            "finalized_at": run.get("finalized_at"), "finalized_by": run.get("finalized_by"),
                            "comparison": run.get("comparison"), "migrated": "value copied onto a supporting stage"})
        fields.update({"results_final": None, "ml_outcome": "unknown", "comparison": None,
                       "results_history": history, "supporting": prun_id, "result_run_id": result_run_id})
    if run.get("results_status") == "auto":
        fields.update({"results_status": "missing", "results_auto": None})
    return fields


def results_per_pipeline_run(tx: Transaction, partitions: list[str]) -> int:
    """Schema 2 → 3 over the workspace partitions; returns the number of pipeline runs migrated."""
    count = 0
    for partition in partitions:
        pruns = tx.table("pipeline_runs", partition)
        runs = tx.table("runs", partition)
        records = tx.table("records", partition)
        stored = {str(d["id"]): d for d in runs.iter_raw()}
        for prun in list(pruns.iter_raw()):
            if prun.get("result_stage"):
                continue
            ids = prun.get("stage_runs") or {}
            result = result_stage_of(prun, stored)
            if result is None:
                continue
            result_id = str(ids[result])
            pruns.patch(str(prun["id"]), {"result_stage": result, "result_run_id": result_id})
            for stage, rid in ids.items():
                run = stored.get(str(rid))
                if run is None:
                    continue
                role = RESULT if stage == result else SUPPORTING
                fields = {"role": role} if role == RESULT else _supporting_fields(run, str(prun["id"]), result_id)
                runs.patch(str(rid), fields)
                record_id = run.get("record_id")
                if record_id and records.has(str(record_id)):
                    records.patch(str(record_id), {"role": role})
            count += 1
    return count


def build_history_indexes(store: Store) -> int:
    """Schema 3 → 4: build every workspace's history index from its rows; returns the workspaces indexed."""
    from goldfish.records.index import rebuild

    workspaces = [p.split("/", 1)[1] for p in store.partitions("ws")]
    for workspace in workspaces:
        rebuild(store, workspace)
    return len(workspaces)


def shard_new_tables(store: Store) -> list[str]:
    """Schema 3 → 4: tables sharded by default since the store was made move into shards."""
    from goldfish.store import DEFAULT_SHARDING

    new = {name: size for name, size in DEFAULT_SHARDING.items() if name not in store.sharding}
    store.sharding.update(new)
    heads = ["project", *store.partitions("ws")]
    with store.transaction() as tx:
        for partition in heads:
            storage = tx._storage(partition)
            for name in new:
                docs = storage.tables.pop(name, None)
                if docs is None:
                    continue
                storage.dirty = True
                table = tx.table(name, partition)
                for doc_id, doc in docs.items():
                    table.put(doc_id, doc)
    return sorted(new)


def migrate(store: Store, found: int, stamp: dict[str, Any]) -> None:
    """Every step from schema ``found`` to the current one, then the new stamp (store lock held)."""
    if found < 2:
        _to_shards(store)
    else:
        store.sharding = {str(k): int(v) for k, v in (stamp.get("sharding") or {}).items()}
    if found < 3:
        with store.transaction() as tx:
            results_per_pipeline_run(tx, store.partitions("ws"))
    if found < 4:
        shard_new_tables(store)
        build_history_indexes(store)
    store._write_stamp()


def _to_shards(store: Store) -> None:
    """Schema 1 → 2: move the growing tables out of their head partitions into shards."""
    from goldfish.store import DEFAULT_SHARDING

    store.sharding = dict(DEFAULT_SHARDING)
    heads = ["project", *store.partitions("ws")] if (store.root / "project.json").exists() else store.partitions("ws")
    with store.transaction() as tx:
        for partition in heads:
            storage = tx._storage(partition)
            for name in list(storage.tables):
                if name not in store.sharding:
                    continue
                docs = storage.tables.pop(name)
                storage.dirty = True
                table = tx.table(name, partition)
                for doc_id, doc in docs.items():
                    table.put(doc_id, doc)
