"""Schema contracts for signals: does this data match what pipeline.yaml promised?

Schema kinds (``kind`` may be omitted; ``columns``/``dtypes`` imply tabular, ``shape``/``dtype``/
``rank``/``arrays`` imply tensor):

- ``tensor``: ``shape`` (list; ``null`` or ``-1`` is a wildcard dim), ``dtype`` (numpy dtype
  string), ``rank``; or ``arrays: {name: {shape, dtype, rank}}`` with optional ``primary_array``.
  Dict-like data (npz, dict) must hold every declared array; a single array is checked against
  ``primary_array`` (else the first declared array).
- ``tabular``: ``columns`` (the exact ordered list) and ``dtypes`` (per column).
- ``json``: the data must be a dict or a list.
- ``file``: opaque; nothing is checked.

``check_contract`` returns findings with severity ``error``; the caller maps them to the
enforcement mode (``ContractViolation`` in blocking mode, warnings otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from stage_sdk.findings import Finding
from stage_sdk.formats import is_dataframe

KINDS = ("tensor", "tabular", "json", "file")
_STRINGISH = {"str", "string", "object", "unicode"}


class ContractViolation(ValueError):
    """An output broke its schema contract (or a blocking stats threshold); nothing was written."""

    def __init__(self, message: str, findings: list[Finding]):
        super().__init__(message)
        self.findings = findings


def schema_kind(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("kind")
    if kind is not None:
        return str(kind)
    if "columns" in schema or "dtypes" in schema:
        return "tabular"
    if any(k in schema for k in ("shape", "dtype", "rank", "arrays")):
        return "tensor"
    return None


def _finding(signal: str, check: str, message: str) -> Finding:
    return Finding(source="contract", check=check, severity="error", signal=signal, message=message)


def _fmt_shape(shape: Any) -> str:
    return "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"


def _check_array(arr: Any, spec: Mapping[str, Any], signal: str, label: str) -> list[Finding]:
    out: list[Finding] = []
    shape = getattr(arr, "shape", None)
    dtype = getattr(arr, "dtype", None)
    if shape is None or dtype is None:
        return [_finding(signal, "type", f"{label}: expected an array, got {type(arr).__name__}.")]
    shape = tuple(int(d) for d in shape)
    want_shape = spec.get("shape")
    if want_shape is not None:
        if not isinstance(want_shape, list | tuple) or not all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= -1) for d in want_shape
        ):
            out.append(_finding(signal, "schema", f"{label}: schema shape {want_shape!r} must be a list of "
                                "ints, null or -1 (wildcard)."))
        elif len(want_shape) != len(shape) or any(
            w is not None and w != -1 and w != got for w, got in zip(want_shape, shape, strict=False)
        ):
            out.append(_finding(signal, "shape", f"{label}: shape mismatch: expected {_fmt_shape(want_shape)} "
                                f"(null/-1 = any), got {list(shape)}."))
    rank = spec.get("rank")
    if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or rank != len(shape)):
        out.append(_finding(signal, "rank", f"{label}: rank mismatch: expected {rank!r}, got {len(shape)} "
                            f"(shape {list(shape)})."))
    want_dtype = spec.get("dtype")
    if want_dtype is not None:
        ok, problem = _dtype_matches(str(want_dtype), dtype)
        if problem:
            out.append(_finding(signal, "schema", f"{label}: {problem}"))
        elif not ok:
            out.append(_finding(signal, "dtype", f"{label}: dtype mismatch: expected {want_dtype}, got {dtype}."))
    return out


def _dtype_matches(expected: str, actual: Any) -> tuple[bool, str | None]:
    actual_s = str(actual)
    if expected == actual_s:
        return True, None
    if expected.lower() in _STRINGISH:
        kind = getattr(actual, "kind", None)
        return (kind in ("O", "U", "S") or actual_s in ("string", "str", "object")), None
    try:
        want = np.dtype(expected)
    except TypeError:
        return False, None  # a pandas-only dtype name ("category", "Int64"): string equality only
    try:
        return want == np.dtype(actual), None
    except TypeError:
        return False, None


def _check_tensor(data: Any, schema: Mapping[str, Any], signal: str) -> list[Finding]:
    arrays = schema.get("arrays")
    if arrays is not None and not (isinstance(arrays, Mapping) and arrays):
        return [_finding(signal, "schema", f"{signal}: schema arrays must be a non-empty mapping of name to "
                         "{shape, dtype}.")]
    dict_like = isinstance(data, Mapping) or hasattr(data, "files")
    if dict_like:
        keys = list(data.files) if hasattr(data, "files") else [str(k) for k in data]
        if arrays is None and len(keys) == 1:
            return _check_array(data[keys[0]], schema, signal, f"{signal}.{keys[0]}")
        if arrays is None:
            return [_finding(signal, "type", f"{signal}: the schema describes one tensor but the data holds "
                             f"several arrays ({', '.join(keys[:10])}). Fix: save one array, or describe them "
                             "with schema.arrays.")]
        out: list[Finding] = []
        for name, spec in arrays.items():
            if name not in keys:
                out.append(_finding(signal, "arrays", f"{signal}: declared array {name!r} is missing; the data "
                                    f"has {', '.join(keys[:10]) or 'no arrays'}."))
                continue
            out += _check_array(data[name], spec if isinstance(spec, Mapping) else {}, signal, f"{signal}.{name}")
        return out
    if any(k in schema for k in ("shape", "dtype", "rank")) or arrays is None:
        return _check_array(data, schema, signal, signal)
    primary = schema.get("primary_array")
    if primary is not None and primary not in arrays:
        return [_finding(signal, "schema", f"{signal}: primary_array {primary!r} is not one of the declared "
                         f"arrays ({', '.join(map(str, arrays))}).")]
    name = primary if primary is not None else next(iter(arrays))
    spec = arrays[name]
    return _check_array(data, spec if isinstance(spec, Mapping) else {}, signal, f"{signal} ({name})")


def _actual_columns(data: Any) -> tuple[list[str] | None, dict[str, Any]]:
    """(ordered column names or None if the data carries none, {column: dtype})."""
    if is_dataframe(data):
        return [str(c) for c in data.columns], {str(c): data[c].dtype for c in data.columns}
    if isinstance(data, Mapping):
        return [str(k) for k in data], {str(k): np.asarray(v).dtype for k, v in data.items()}
    if isinstance(data, np.ndarray) and data.dtype.names:
        return list(data.dtype.names), {n: data.dtype[n] for n in data.dtype.names}
    return None, {}


def _check_tabular(data: Any, schema: Mapping[str, Any], signal: str) -> list[Finding]:
    want_cols = schema.get("columns")
    want_dtypes = schema.get("dtypes") or {}
    if not isinstance(want_dtypes, Mapping):
        return [_finding(signal, "schema", f"{signal}: schema dtypes must map column -> dtype.")]
    cols, dtypes = _actual_columns(data)
    if cols is None:
        if isinstance(data, np.ndarray) and data.ndim == 2:
            # A plain 2-D array takes its column names from the schema, so only dtypes can differ.
            width = len(want_cols) if isinstance(want_cols, list) else data.shape[1]
            if width != data.shape[1]:
                return [_finding(signal, "columns", f"{signal}: expected {width} columns, the array has "
                                 f"{data.shape[1]}.")]
            names = [str(c) for c in want_cols] if isinstance(want_cols, list) else [str(i) for i in range(width)]
            cols, dtypes = names, dict.fromkeys(names, data.dtype)
        else:
            return [_finding(signal, "type", f"{signal}: expected a table (DataFrame, dict of columns or 2-D "
                             f"array), got {type(data).__name__}.")]
    out: list[Finding] = []
    if want_cols is not None:
        if not isinstance(want_cols, list):
            out.append(_finding(signal, "schema", f"{signal}: schema columns must be a list."))
        elif [str(c) for c in want_cols] != cols:
            want = [str(c) for c in want_cols]
            missing = [c for c in want if c not in cols]
            extra = [c for c in cols if c not in want]
            detail = []
            if missing:
                detail.append(f"missing {missing}")
            if extra:
                detail.append(f"unexpected {extra}")
            if not missing and not extra:
                detail.append("same columns in a different order")
            out.append(_finding(signal, "columns", f"{signal}: columns mismatch ({'; '.join(detail)}): "
                                f"expected {want}, got {cols}."))
    for col, want in want_dtypes.items():
        if str(col) not in dtypes:
            if want_cols is None:
                out.append(_finding(signal, "columns", f"{signal}: column {col!r} (declared in dtypes) is missing."))
            continue
        ok, problem = _dtype_matches(str(want), dtypes[str(col)])
        if problem or not ok:
            out.append(_finding(signal, "dtype", f"{signal}: column {col!r} dtype mismatch: expected {want}, "
                                f"got {dtypes[str(col)]}."))
    return out


def check_contract(data: Any, schema: dict[str, Any] | None, *, signal: str) -> list[Finding]:
    """Compare ``data`` with a signal's schema; [] when it conforms (or the schema is null/file)."""
    if schema is None:
        return []
    if not isinstance(schema, Mapping):
        return [_finding(signal, "schema", f"{signal}: schema must be a mapping or null, got "
                         f"{type(schema).__name__}. Fix: use schema: {{kind: tensor, ...}} or schema: null.")]
    kind = schema_kind(schema)
    if kind == "tensor":
        return _check_tensor(data, schema, signal)
    if kind == "tabular":
        return _check_tabular(data, schema, signal)
    if kind == "json":
        if isinstance(data, dict | list | tuple):
            return []
        return [_finding(signal, "type", f"{signal}: expected JSON (a dict or a list), got {type(data).__name__}.")]
    if kind in ("file", None):
        return []
    return [_finding(signal, "schema", f"{signal}: unknown schema kind {kind!r}. Fix: use one of "
                     f"{', '.join(KINDS)}, or schema: null.")]
