"""Reading and writing signal files: npy, npz, csv, json.

Writers go through ``_fs.atomic_file``. ``np.save`` into a real file object streams the array with
``tofile`` (no extra copy), so a save costs what a raw ``np.save`` costs. Pickled objects are
refused both ways: a signal file must not execute code when read.

pandas is optional. Without it a csv loads as a dict ``{column: 1-D ndarray}`` where each column
is int64 if every cell parses as an integer, else float64 if every cell parses as a number (empty
cells become NaN), else str.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stage_sdk import _fs

TABULAR_FORMATS = ("csv",)
DATA_FORMATS = ("npy", "npz", "csv", "json")
PATH_FORMATS = ("file", "directory", "dataset")
ALL_FORMATS = DATA_FORMATS + PATH_FORMATS
EXTENSIONS = {"npy": ".npy", "npz": ".npz", "csv": ".csv", "json": ".json"}
_ARRAY_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)


def pandas_module() -> Any | None:
    """pandas when importable (imported on first need, so ``import goldfish.io`` stays light)."""
    if "pandas" in sys.modules:
        return sys.modules["pandas"]
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def is_dataframe(data: object) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(data, pd.DataFrame)


# ---------------------------------------------------------------------------------------------- npy


def as_array(data: object, signal: str) -> np.ndarray:
    """The ndarray to save for an npy signal; object arrays are refused (they would need pickle)."""
    if is_dataframe(data):
        arr = data.to_numpy()  # type: ignore[attr-defined]
    else:
        try:
            arr = np.asarray(data)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(
                f"Output {signal!r} (npy) needs array data; converting {type(data).__name__} failed: {exc}. "
                "Fix: pass a numpy array (np.asarray(...)) with a fixed shape."
            ) from None
    if arr.dtype.hasobject:
        raise ValueError(
            f"Output {signal!r} (npy) got an object array ({type(data).__name__}); npy signals hold plain "
            "numeric/string arrays only (no pickle). Fix: convert to a numeric dtype, or declare the output "
            "as json or file."
        )
    return arr


def write_npy(path: Path, arr: np.ndarray) -> None:
    with _fs.atomic_file(path) as f:
        np.save(f, arr, allow_pickle=False)


def read_npy(path: Path, *, mmap: bool = False) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


# ---------------------------------------------------------------------------------------------- npz


def as_array_dict(data: object, signal: str) -> dict[str, np.ndarray]:
    if not isinstance(data, Mapping):
        raise ValueError(
            f"Output {signal!r} (npz) needs a dict of arrays, got {type(data).__name__}. "
            "Fix: save_output(name, {'features': X, 'labels': y})."
        )
    if not data:
        raise ValueError(f"Output {signal!r} (npz) got an empty dict. Fix: pass at least one array.")
    out: dict[str, np.ndarray] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not _ARRAY_KEY_RE.fullmatch(key):
            raise ValueError(
                f"Output {signal!r} (npz): array name {key!r} is not allowed. "
                "Fix: use 1-128 of [A-Za-z0-9_.-], starting with a letter, digit or '_'."
            )
        out[key] = as_array(value, f"{signal}.{key}")
    return out


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with _fs.atomic_file(path) as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def read_npz(path: Path) -> Any:
    """A lazy, dict-like ``NpzFile`` (arrays load on access; supports ``with``)."""
    return np.load(path, allow_pickle=False)


# ---------------------------------------------------------------------------------------------- csv


def table_columns(data: object, schema_columns: list[str] | None, signal: str) -> dict[str, Any]:
    """Column name -> 1-D values for a DataFrame, dict of columns, structured or 2-D array."""
    if is_dataframe(data):
        frame: Any = data
        return {str(c): frame[c].to_numpy() for c in frame.columns}
    if isinstance(data, Mapping):
        cols = {str(k): np.asarray(v) for k, v in data.items()}
        lengths = {len(v) if v.ndim else 1 for v in cols.values()}
        if any(v.ndim != 1 for v in cols.values()) or len(lengths) > 1:
            raise ValueError(
                f"Output {signal!r} (csv): every column must be a 1-D sequence of the same length "
                f"(got lengths {sorted(lengths)}). Fix: pass equal-length lists or 1-D arrays."
            )
        return cols
    if isinstance(data, np.ndarray) and data.dtype.names:
        return {name: data[name] for name in data.dtype.names}
    if isinstance(data, np.ndarray) and data.ndim == 2:
        names = list(schema_columns) if schema_columns else [str(i) for i in range(data.shape[1])]
        if len(names) != data.shape[1]:
            raise ValueError(
                f"Output {signal!r} (csv): the schema names {len(names)} columns but the array has "
                f"{data.shape[1]}. Fix: pass a {data.shape[0]}x{len(names)} array or fix schema.columns."
            )
        return {name: data[:, i] for i, name in enumerate(names)}
    raise ValueError(
        f"Output {signal!r} (csv) needs a pandas DataFrame, a dict of columns or a 2-D array, "
        f"got {type(data).__name__}. Fix: pass one of those."
    )


def _cell(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def write_csv(path: Path, data: object, columns: dict[str, Any], delimiter: str = ",") -> None:
    """Header row then one row per record; with pandas a DataFrame is written by ``to_csv``."""
    pd = pandas_module()
    frame: Any = data if is_dataframe(data) else (pd.DataFrame(columns) if pd is not None else None)
    with _fs.atomic_file(path) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        if frame is not None:
            frame.to_csv(text, index=False, sep=delimiter)
        else:
            writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
            writer.writerow(list(columns))
            series = [np.asarray(v).tolist() for v in columns.values()]
            for row in zip(*series, strict=True):
                writer.writerow([_cell(v) for v in row])
        text.flush()
        text.detach()


def _convert_column(values: list[str]) -> np.ndarray:
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:
        return np.array([float(v) if v.strip() != "" else math.nan for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)


def read_csv(path: Path, delimiter: str = ",") -> Any:
    pd = pandas_module()
    if pd is not None:
        return pd.read_csv(path, sep=delimiter)
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    return {
        name: _convert_column([row[i] if i < len(row) else "" for row in body]) for i, name in enumerate(header)
    }


# --------------------------------------------------------------------------------------------- json


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_bytes(data: object, signal: str) -> bytes:
    """Serialise a json output (numpy values converted; NaN/Inf refused, since they are not JSON)."""
    try:
        text = json.dumps(data, default=_json_default, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Output {signal!r} (json) is not JSON serialisable: {exc}. "
            "Fix: use dicts, lists, str, int, finite floats, bool or None (numpy values are converted)."
        ) from None
    return text.encode("utf-8")


def write_json(path: Path, payload: bytes) -> None:
    _fs.atomic_write(path, payload)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# -------------------------------------------------------------------------------- opening for checks


def open_for_check(path: Path) -> tuple[bool, Any]:
    """Load an existing output file/dir just enough to check its contract: (understood, data).

    npy is memory-mapped; a directory becomes ``{stem: array}`` over its ``*.npy`` files plus the
    arrays of its ``*.npz`` files. Anything else is opaque: (False, None).
    """
    if path.is_dir():
        arrays: dict[str, Any] = {}
        for child in sorted(path.iterdir()):
            if child.is_symlink() or not child.is_file():
                continue
            if child.suffix == ".npy":
                arrays[child.stem] = read_npy(child, mmap=True)
            elif child.suffix == ".npz":
                with np.load(child, allow_pickle=False) as npz:
                    for key in npz.files:
                        arrays[key] = npz[key]
        return (True, arrays) if arrays else (False, None)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return True, read_npy(path, mmap=True)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return True, {key: npz[key] for key in npz.files}
    if suffix == ".csv":
        return True, read_csv(path)
    if suffix == ".json":
        return True, read_json(path)
    return False, None
