"""Signal I/O for stage code (``from goldfish.io import load_input, save_output, ...``).

Inputs and outputs must be declared in ``GOLDFISH_STAGE_CONFIG``; names are validated before they
touch the filesystem. Outputs are written atomically as ``$GOLDFISH_OUTPUTS_DIR/<name>.<ext>``
(npy, npz, csv, json) or ``$GOLDFISH_OUTPUTS_DIR/<name>`` (file, directory), after the SVS contract
and stats checks. See docs/stage-sdk.md.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np

from stage_sdk import _env, _fs, formats, stats
from stage_sdk import metrics as _metrics
from stage_sdk.checkpoints import list_checkpoints, load_checkpoint, save_checkpoint
from stage_sdk.contracts import ContractViolation, check_contract, schema_kind
from stage_sdk.findings import Finding, record_findings, record_stats
from stage_sdk.metrics import log_artifact, log_metric, log_metrics
from stage_sdk.runtime import (
    get_heartbeat_age,
    get_stop_reason,
    heartbeat,
    read_heartbeat,
    runtime_log,
    should_stop,
)

__all__ = [
    "ContractViolation",
    "finish_metrics",
    "flush_metrics",
    "get_config",
    "get_heartbeat_age",
    "get_input_path",
    "get_output_path",
    "get_stop_reason",
    "heartbeat",
    "list_checkpoints",
    "load_checkpoint",
    "load_input",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "read_heartbeat",
    "runtime_log",
    "save_checkpoint",
    "save_output",
    "should_stop",
]

OUTPUT_FORMATS = ("npy", "npz", "csv", "json", "file", "directory")
MAX_DIR_ARRAYS_WITH_STATS = 100

finish_metrics = _metrics.finish

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _warn_once(key: tuple[str, str], message: str) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    runtime_log(message, "WARNING")


def get_config() -> dict[str, Any]:
    """A copy of the merged stage config: your config keys plus ``stage``, ``inputs``, ``outputs``."""
    return _env.user_config()


def flush_metrics() -> None:
    """Write buffered metric records to ``.goldfish/metrics.jsonl`` now."""
    _metrics.flush()


# ----------------------------------------------------------------------------------------- inputs


def _input_location(name: str, spec: dict[str, Any], ext: str | None) -> Path | None:
    base = _env.inputs_dir() / name
    if base.exists():
        return base
    if ext and base.with_name(name + ext).exists():
        return base.with_name(name + ext)
    loc = spec.get("location")
    if isinstance(loc, str) and loc and "://" not in loc:
        path = Path(loc)
        if path.exists():
            return path
    return None


def _missing_input(name: str, spec: dict[str, Any], ext: str | None) -> FileNotFoundError:
    base = _env.inputs_dir() / name
    looked = [str(base)] + ([str(base.with_name(name + ext))] if ext else [])
    loc = spec.get("location")
    if isinstance(loc, str) and "://" in loc:
        hint = (f"Its location {loc} is remote and was not staged into {_env.inputs_dir()}. Fix: run the stage "
                "through goldfish so inputs are staged, or copy the data to that path.")
    else:
        if loc:
            looked.append(str(loc))
        hint = "Fix: check the upstream run produced it (inspect_run), or set inputs_override to a real path."
    return FileNotFoundError(f"Input {name!r} not found; looked at {', '.join(looked)}. {hint}")


def _find_file(path: Path, name: str, ext: str) -> Path:
    """The ``ext`` file for an input: the path itself, ``<name><ext>`` inside a dir, or its single ``*<ext>``."""
    if path.is_file():
        return path
    inner = path / f"{name}{ext}"
    if inner.is_file():
        return inner
    matches = sorted(p for p in path.glob(f"*{ext}") if p.is_file())
    if len(matches) == 1:
        return matches[0]
    if not matches:
        listing = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "(empty)"
        raise FileNotFoundError(
            f"Input {name!r}: no {ext} file in directory {path} (contains: {listing}). "
            f"Fix: load it with format='directory' and read the files yourself, or declare the right format."
        )
    raise ValueError(
        f"Input {name!r}: directory {path} holds {len(matches)} {ext} files "
        f"({', '.join(p.name for p in matches[:10])}), so which to load is ambiguous. "
        f"Fix: name one {name}{ext}, or load_input({name!r}, format='directory') and pick the file."
    )


def load_input(name: str, format: str | None = None, mmap: bool = False) -> Any:
    """Load a declared input.

    Format (argument, else the config's ``format``, else its ``type``): ``npy`` -> ndarray
    (``mmap=True`` memory-maps it read-only), ``npz`` -> lazy dict-like ``NpzFile``, ``csv`` ->
    pandas DataFrame (dict of column arrays without pandas), ``json`` -> parsed object,
    ``file``/``directory``/``dataset`` -> ``Path``.
    """
    name, spec = _env.declared("inputs", name)
    fmt = str(format).lower() if format is not None else _env.signal_format(spec, "file")
    if fmt not in formats.ALL_FORMATS:
        raise ValueError(
            f"Unknown format {fmt!r} for input {name!r}. Fix: use one of {', '.join(formats.ALL_FORMATS)}."
        )
    if spec.get("schema", "absent") is None:
        _warn_once(("input", name), f"Input {name!r} has schema: null, so it has no contract. "
                   "Fix: describe it in pipeline.yaml (kind: tensor/tabular/json/file) when you can.")
    ext = formats.EXTENSIONS.get(fmt)
    path = _input_location(name, spec, ext)
    if path is None:
        raise _missing_input(name, spec, ext)
    if fmt in formats.PATH_FORMATS:
        return path
    assert ext is not None
    file = _find_file(path, name, ext)
    if fmt == "npy":
        return formats.read_npy(file, mmap=mmap)
    if fmt == "npz":
        return formats.read_npz(file)
    if fmt == "csv":
        params = spec.get("format_params")
        delimiter = params.get("delimiter", ",") if isinstance(params, dict) else ","
        return formats.read_csv(file, delimiter=str(delimiter))
    return formats.read_json(file)


def get_input_path(name: str) -> Path:
    """Where a declared input lives (``$GOLDFISH_INPUTS_DIR/<name>``, else its config location).

    Not required to exist: a missing input returns the inputs-dir path.
    """
    name, spec = _env.declared("inputs", name)
    ext = formats.EXTENSIONS.get(_env.signal_format(spec, "file"))
    return _input_location(name, spec, ext) or _env.inputs_dir() / name


# ---------------------------------------------------------------------------------------- outputs


def _output_target(name: str, fmt: str) -> Path:
    root = _env.outputs_dir()
    target = root / f"{name}{formats.EXTENSIONS.get(fmt, '')}"
    if (target.exists() or target.is_symlink()) and not _env.inside(root, target):
        raise ValueError(
            f"Output path {target} is a symlink that leads outside the outputs dir {root}; refusing to use it. "
            "Fix: remove the symlink and write the real data there."
        )
    return target


def get_output_path(name: str) -> Path:
    """Where a declared output must be written: ``<outputs>/<name>.<ext>`` for npy/npz/csv/json,
    ``<outputs>/<name>`` otherwise. A directory output's directory is created; for the others only
    the parent is."""
    name, spec = _env.declared("outputs", name)
    fmt = _env.signal_format(spec, "directory")
    target = _output_target(name, fmt)
    if fmt == "directory":
        if target.exists() and not target.is_dir():
            raise ValueError(f"Output {name!r} is a directory signal but {target} is a file. Fix: remove it.")
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _vocab_size(schema: Any, array: str | None) -> int | None:
    """The schema's ``vocab_size`` for a single array, or for the primary (or only) array of several."""
    if not isinstance(schema, dict):
        return None
    value = schema.get("vocab_size")
    arrays = schema.get("arrays")
    if array is not None and isinstance(arrays, dict):
        spec = arrays.get(array)
        if isinstance(spec, dict) and "vocab_size" in spec:
            value = spec["vocab_size"]
        elif array != schema.get("primary_array") and not (len(arrays) == 1 and array in arrays):
            value = None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _stats_for(signal: str, data: Any, fmt: str, schema: Any) -> dict[str, dict[str, Any]]:
    """Stats entries keyed ``signal`` or ``signal.<array|column>``; {} for non-numeric shapes of data."""
    if isinstance(data, np.ndarray) and fmt != "csv":
        return {signal: stats.array_stats(data, vocab_size=_vocab_size(schema, None))}
    if fmt == "csv":
        cols = formats.table_columns(data, _schema_columns(schema), signal)
        return {f"{signal}.{col}": entry for col, entry in stats.table_stats(cols).items()}
    if isinstance(data, dict) and all(isinstance(v, np.ndarray) for v in data.values()):
        items = list(data.items())[:MAX_DIR_ARRAYS_WITH_STATS]
        return {f"{signal}.{k}": stats.array_stats(v, vocab_size=_vocab_size(schema, k)) for k, v in items}
    return {}


def _schema_columns(schema: Any) -> list[str] | None:
    cols = schema.get("columns") if isinstance(schema, dict) else None
    return [str(c) for c in cols] if isinstance(cols, list) else None


def _primary_key(signal: str, schema: Any) -> str | None:
    if isinstance(schema, dict) and isinstance(schema.get("arrays"), dict) and schema.get("primary_array"):
        return f"{signal}.{schema['primary_array']}"
    return None


def _enforce(signal: str, schema: Any, check_data: Any, checkable: bool, entries: dict[str, dict[str, Any]],
             svs: dict[str, Any]) -> None:
    """Run the contract and stats checks, record what they found, raise in blocking mode on errors."""
    if svs["problem"]:
        _warn_once(("svs", svs["problem"]), f"goldfish: {svs['problem']}")
    if schema is None:
        _warn_once(("output", signal), f"Output {signal!r} has schema: null, so it is saved without a contract. "
                   "Fix: describe it in pipeline.yaml (kind: tensor/tabular/json/file) when you can.")
    mode = svs["default_enforcement"] if svs["enabled"] else "silent"
    found: list[Finding] = []
    if svs["enabled"] and schema is not None:
        if checkable:
            contract = check_contract(check_data, schema, signal=signal)
        elif schema_kind(schema) in ("tensor", "tabular", "json"):
            contract = []
            found.append(Finding("contract", "unchecked", "info", signal,
                                 f"{signal}: the {schema_kind(schema)} contract was not checked because the "
                                 "file's format is opaque (not npy/npz/csv/json)."))
        else:
            contract = []
        if mode == "warning":
            contract = [dataclasses.replace(f, severity="warning") for f in contract]
        if mode != "silent":
            found += contract
    if svs["stats_enabled"] and entries:
        record_stats(entries)
        primary = _primary_key(signal, schema)
        for key, entry in entries.items():
            found += stats.evaluate(entry, signal=signal, key=key, domain=svs["domain"],
                                    domain_checks=primary is None or key == primary)
    record_findings(found)
    for f in found:
        if f.severity != "info":
            runtime_log(f"SVS {f.source} {f.severity} ({f.check}): {f.message}", "WARNING")
    if mode == "blocking":
        errors = [f for f in found if f.severity == "error"]
        if errors:
            raise ContractViolation(
                f"Output {signal!r} was not written (svs.default_enforcement: blocking): "
                + " ".join(f.message for f in errors)
                + " Fix: make the data match the schema in pipeline.yaml, correct the schema, or set "
                "svs.default_enforcement: warning in goldfish.yaml.",
                errors,
            )


def _mark_artifact(name: str) -> None:
    _fs.atomic_write(_env.outputs_dir() / ".artifacts" / name, b"")


def _save_path(name: str, fmt: str, spec: dict[str, Any], src: Path, target: Path, svs: dict[str, Any]) -> None:
    """Validate an existing file/directory as output ``name`` and put it at ``target`` (copy if elsewhere)."""
    if not src.exists():
        raise FileNotFoundError(f"Output {name!r}: {src} does not exist. Fix: write it first "
                                f"(at get_output_path({name!r}) to avoid a copy).")
    if src.is_symlink():
        raise ValueError(f"Output {name!r}: {src} is a symlink; refusing to follow it. Fix: pass the real path.")
    if fmt == "directory" and not src.is_dir():
        raise ValueError(f"Output {name!r} is a directory signal but {src} is a file. Fix: pass a directory.")
    if fmt != "directory" and src.is_dir():
        raise ValueError(f"Output {name!r} is a {fmt} signal but {src} is a directory. Fix: pass a file.")
    if src.is_dir() and src.resolve() in target.resolve().parents:
        raise ValueError(f"Output {name!r}: {src} contains the output path {target} itself, so it cannot be "
                         f"copied there. Fix: build the directory at get_output_path({name!r}) and pass that.")
    schema = spec.get("schema")
    entries: dict[str, dict[str, Any]] = {}
    checkable, data = False, None
    if svs["enabled"] and (schema is not None or svs["stats_enabled"]):
        try:
            checkable, data = formats.open_for_check(src)
        except Exception as exc:  # unreadable content is a contract problem, reported below
            checkable, data = True, exc
        if svs["stats_enabled"] and checkable and not isinstance(data, Exception):
            entries = _stats_for(name, data, "csv" if src.suffix.lower() == ".csv" else fmt, schema)
    if isinstance(data, Exception):
        data = f"<unreadable: {data}>"
    _enforce(name, schema, data, checkable, entries, svs)
    same = target.exists() and src.resolve() == target.resolve()
    if same:
        return
    if src.is_dir():
        tmp = _fs.tmp_sibling(target)
        try:
            _fs.copy_tree(src, tmp)
            _fs.replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    else:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        _fs.copy_file(src, target)


def save_output(name: str, data: Any, artifact: bool = False) -> Path:
    """Check ``data`` against the output's contract and stats thresholds, then write it atomically.

    npy: array-like; npz: dict of arrays; csv: DataFrame, dict of columns or 2-D array (headers
    from schema.columns); json: dict/list. ``file``/``directory`` outputs take a ``Path`` (copied
    into place unless it already is ``get_output_path(name)``); a file output with a ``kind: json``
    schema also takes a dict/list. A ``Path`` works for the other formats too. Returns the path
    written. Raises ``ContractViolation`` (a ValueError) in blocking mode, writing nothing.
    """
    name, spec = _env.declared("outputs", name)
    fmt = _env.signal_format(spec, "directory")
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"Output {name!r} has format {fmt!r}, which save_output cannot write. "
                         f"Fix: use one of {', '.join(OUTPUT_FORMATS)}, or write it at get_output_path({name!r}).")
    svs = _env.svs_config()
    schema = spec.get("schema")
    target = _output_target(name, fmt)
    if isinstance(data, os.PathLike):
        _save_path(name, fmt, spec, Path(data), target, svs)
    else:
        json_file = fmt == "file" and isinstance(data, dict | list) and isinstance(schema, dict) \
            and schema_kind(schema) == "json"
        if fmt in ("file", "directory") and not json_file:
            raise ValueError(
                f"Output {name!r} is a {fmt} signal, so save_output cannot serialise a {type(data).__name__} "
                f"for it. Fix: write the {fmt} yourself at get_output_path({name!r}) (= {target}), then call "
                f"save_output({name!r}, get_output_path({name!r})) to check and register it."
            )
        _save_data(name, "json" if json_file else fmt, data, schema, target, svs)
    if artifact or spec.get("artifact") is True:
        _mark_artifact(name)
    return target


def _save_data(name: str, fmt: str, data: Any, schema: Any, target: Path, svs: dict[str, Any]) -> None:
    stats_on = svs["stats_enabled"]
    if fmt == "npy":
        arr = formats.as_array(data, name)
        _enforce(name, schema, arr, True, _stats_for(name, arr, fmt, schema) if stats_on else {}, svs)
        formats.write_npy(target, arr)
    elif fmt == "npz":
        arrays = formats.as_array_dict(data, name)
        _enforce(name, schema, arrays, True, _stats_for(name, arrays, fmt, schema) if stats_on else {}, svs)
        formats.write_npz(target, arrays)
    elif fmt == "csv":
        columns = formats.table_columns(data, _schema_columns(schema), name)
        entries = {f"{name}.{c}": e for c, e in stats.table_stats(columns).items()} if stats_on else {}
        _enforce(name, schema, data, True, entries, svs)
        formats.write_csv(target, data, columns)
    else:
        payload = formats.json_bytes(data, name)  # refuse unserialisable data before recording anything
        _enforce(name, schema, data, True, {}, svs)
        formats.write_json(target, payload)
