"""Rules for the ``schema`` section of source metadata: what the data means.

Tensor (npy/npz) schemas describe each array's role, exact shape, dtype and feature names;
tabular (csv) schemas the columns and their dtypes; file schemas a content type. Problems are
recorded in a FieldErrors at their field paths; ``goldfish.sources.metadata`` raises them.
"""

from __future__ import annotations

from typing import Any

from goldfish.fielderrors import FieldErrors, is_int, is_number, join_path, show, suggest, type_name

MAX_ARRAYS = 1000
MAX_DIMS = 32
MAX_NAME = 256
MAX_FEATURE_NAMES = 1_000_000
MAX_FEATURE_NAME = 1024
MAX_SAMPLE = 100
MAX_REASON = 4000
MAX_COLUMNS = 100_000

ROLES: tuple[str, ...] = ("features", "labels", "embeddings", "weights", "metadata", "index", "unknown")
KIND_FOR_FORMAT: dict[str, str] = {"npy": "tensor", "npz": "tensor", "csv": "tabular", "file": "file"}
FEATURE_NAME_KINDS: tuple[str, ...] = ("list", "pattern", "none", "sequence")


def check_schema(doc: dict[str, Any], errors: FieldErrors, fmt: str | None) -> None:
    """Validate ``doc["schema"]`` for a source of format ``fmt`` (None when the format itself is invalid)."""
    if "schema" not in doc:
        return
    schema = doc["schema"]
    if not isinstance(schema, dict):
        errors.add("schema", f"must be an object with a kind (tensor, tabular or file), got {type_name(schema)}")
        return
    expected = KIND_FOR_FORMAT.get(fmt) if fmt else None
    body = expected
    if "kind" in schema:
        kind = schema["kind"]
        if kind in ("tensor", "tabular", "file"):
            body = str(kind)
            if expected is not None and kind != expected:
                errors.add("schema.kind", f'"{kind}" does not fit source.format "{fmt}" (npy/npz → tensor, '
                                          f'csv → tabular, file → file); use "{expected}"')
        else:
            hint = suggest(kind, ("tensor", "tabular", "file"))
            errors.add("schema.kind", f"unknown kind {show(kind)}.{hint} Use tensor (npy/npz), tabular (csv) "
                                      "or file")
            errors.mute("schema.kind")
    elif body is None:
        errors.add("schema.kind", "required key is missing: tensor (npy/npz), tabular (csv) or file")
    if body == "tensor":
        _check_tensor(schema, errors, fmt)
    elif body == "tabular":
        _check_tabular(schema, errors)
    elif body == "file":
        _check_file(schema, errors)


def _check_tensor(schema: dict[str, Any], errors: FieldErrors, fmt: str | None) -> None:
    errors.exact_keys(schema, "schema", ("kind", "arrays", "primary_array"))
    arrays = schema.get("arrays")
    if "arrays" in schema:
        if not isinstance(arrays, dict):
            errors.add("schema.arrays", f"must be an object mapping array name → {{role, shape, dtype, "
                                        f"feature_names}}, got {type_name(arrays)}")
        else:
            _check_arrays(arrays, errors, fmt)
    if "primary_array" in schema:
        primary = schema["primary_array"]
        names = [k for k in arrays if isinstance(k, str)] if isinstance(arrays, dict) else []
        if not isinstance(primary, str):
            errors.add("schema.primary_array", f"must be the name of one of schema.arrays, got {type_name(primary)}")
        elif isinstance(arrays, dict) and primary not in arrays:
            listed = ", ".join(names[:10]) or "none"
            errors.add("schema.primary_array", f"{show(primary)} is not one of schema.arrays ({listed})."
                                               f"{suggest(primary, names)}")


def _check_arrays(arrays: dict[Any, Any], errors: FieldErrors, fmt: str | None) -> None:
    path = "schema.arrays"
    if not arrays:
        errors.add(path, "must describe at least one array")
    elif fmt == "npy" and len(arrays) != 1:
        errors.add(path, f"an npy file holds exactly one array, got {len(arrays)}; use format npz for several")
    if len(arrays) > MAX_ARRAYS:
        errors.add(path, f"has {len(arrays)} arrays; the maximum is {MAX_ARRAYS}")
    for name, array in arrays.items():
        if not isinstance(name, str):
            errors.add(path, f"array names must be strings, got {show(name)}")
            continue
        apath = join_path(path, name)
        if not 1 <= len(name) <= MAX_NAME:
            errors.add(apath, f"array names must be 1-{MAX_NAME} characters, got {len(name)}")
        _check_array(array, apath, errors)


def _check_array(array: object, path: str, errors: FieldErrors) -> None:
    if not isinstance(array, dict):
        errors.add(path, f"must be an object {{role, shape, dtype, feature_names}}, got {type_name(array)}")
        return
    errors.exact_keys(array, path, ("role", "shape", "dtype", "feature_names"))
    if "role" in array and array["role"] not in ROLES:
        role = array["role"]
        hint = suggest(role, ROLES)
        errors.add(f"{path}.role", f"unknown role {show(role)}.{hint} Use one of {', '.join(ROLES)}")
    shape = _check_shape(array["shape"], f"{path}.shape", errors) if "shape" in array else None
    if "dtype" in array:
        dtype = array["dtype"]
        if not isinstance(dtype, str) or not dtype.strip():
            errors.add(f"{path}.dtype", f"must be a non-empty string such as float32, got {show(dtype)}")
    if "feature_names" in array:
        _check_feature_names(array["feature_names"], f"{path}.feature_names", shape, errors)


def _check_shape(shape: object, path: str, errors: FieldErrors) -> list[int] | None:
    """Return the shape when valid (the feature-name count depends on it)."""
    if not isinstance(shape, list):
        errors.add(path, f"must be a list of non-negative integers such as [1000, 768] ([] for a scalar), "
                         f"got {type_name(shape)}")
        return None
    ok = True
    if len(shape) > MAX_DIMS:
        errors.add(path, f"has {len(shape)} dimensions; the maximum is {MAX_DIMS}")
        ok = False
    for i, dim in enumerate(shape):
        if dim is None:
            errors.add(join_path(path, i), "null wildcards are not allowed; give the actual size")
            ok = False
        elif not is_int(dim):
            errors.add(join_path(path, i), f"must be an integer, got {type_name(dim)} {show(dim)}")
            ok = False
        elif dim < 0:
            errors.add(join_path(path, i), f"must be ≥ 0, got {dim}")
            ok = False
    return shape if ok else None


def _names_needed(shape: list[int]) -> tuple[int, str]:
    if not shape:
        return 0, "a scalar (shape []) has no names"
    return shape[-1], f"the last dimension of shape {shape} is {shape[-1]}"


def _check_feature_names(names: object, path: str, shape: list[int] | None, errors: FieldErrors) -> None:
    if not isinstance(names, dict):
        errors.add(path, f'must be an object such as {{"kind": "list", "values": [...]}}, got {type_name(names)}')
        return
    if "kind" not in names:
        errors.add(f"{path}.kind", f"required key is missing: one of {', '.join(FEATURE_NAME_KINDS)}")
        return
    kind = names["kind"]
    if kind == "list":
        _check_name_list(names, path, shape, errors)
    elif kind == "pattern":
        _check_name_pattern(names, path, shape, errors)
    elif kind in ("none", "sequence"):
        optional = ("interval", "unit", "start_value") if kind == "sequence" else ()
        errors.exact_keys(names, path, ("kind", "reason"), optional)
        if "reason" in names:
            _check_reason(names["reason"], f"{path}.reason", errors)
        if kind == "none" and shape:
            errors.add(f"{path}.kind", f'"none" is only for scalar arrays (shape []), this one has shape {shape}; '
                                       'list the names or use "pattern"')
        if kind == "sequence":
            if shape == []:
                errors.add(f"{path}.kind", '"sequence" needs a non-scalar shape; use "none" for a scalar')
            _check_sequence_extras(names, path, errors)
    else:
        hint = suggest(kind, FEATURE_NAME_KINDS)
        errors.add(f"{path}.kind", f"unknown kind {show(kind)}.{hint} Use one of {', '.join(FEATURE_NAME_KINDS)}")


def _check_name_list(names: dict[str, Any], path: str, shape: list[int] | None, errors: FieldErrors) -> None:
    errors.exact_keys(names, path, ("kind", "values"))
    if "values" not in names:
        return
    values = names["values"]
    vpath = f"{path}.values"
    if not isinstance(values, list):
        errors.add(vpath, f"must be a list of strings, got {type_name(values)}")
        return
    if len(values) > MAX_FEATURE_NAMES:
        errors.add(vpath, f"has {len(values):,} names; the maximum is {MAX_FEATURE_NAMES:,} (use a pattern)")
    _check_strings(values, vpath, MAX_FEATURE_NAME, errors)
    if shape is not None:
        needed, why = _names_needed(shape)
        if len(values) != needed:
            errors.add(vpath, f"has {len(values)} names but {why}; give exactly {needed}")


def _check_name_pattern(names: dict[str, Any], path: str, shape: list[int] | None, errors: FieldErrors) -> None:
    errors.exact_keys(names, path, ("kind", "template", "start", "count", "sample"))
    if "template" in names:
        template = names["template"]
        if not isinstance(template, str) or "{i}" not in template:
            errors.add(f"{path}.template", f"must be a string containing {{i}}, e.g. token_{{i}}; got {show(template)}")
        elif len(template) > MAX_NAME:
            errors.add(f"{path}.template", f"is {len(template)} characters; the maximum is {MAX_NAME}")
    if "start" in names and not is_int(names["start"]):
        errors.add(f"{path}.start", f"must be an integer, got {type_name(names['start'])} {show(names['start'])}")
    if "count" in names:
        count = names["count"]
        if not is_int(count) or count < 0:
            errors.add(f"{path}.count", f"must be an integer ≥ 0, got {show(count)}")
        elif shape is not None:
            needed, why = _names_needed(shape)
            if count != needed:
                errors.add(f"{path}.count", f"is {count} but {why}; make them equal")
    if "sample" in names:
        sample = names["sample"]
        if not isinstance(sample, list):
            errors.add(f"{path}.sample", f"must be a list of example names, got {type_name(sample)}")
        else:
            if len(sample) > MAX_SAMPLE:
                errors.add(f"{path}.sample", f"has {len(sample)} names; the maximum is {MAX_SAMPLE}")
            _check_strings(sample, f"{path}.sample", MAX_FEATURE_NAME, errors)


def _check_strings(values: list[Any], path: str, limit: int, errors: FieldErrors) -> None:
    for i, value in enumerate(values):
        if not isinstance(value, str):
            errors.add(join_path(path, i), f"must be a string, got {type_name(value)}")
        elif len(value) > limit:
            errors.add(join_path(path, i), f"is {len(value)} characters; the maximum is {limit}")


def _check_reason(reason: object, path: str, errors: FieldErrors) -> None:
    if not isinstance(reason, str) or not reason.strip():
        errors.add(path, f"must be a non-empty string saying why, got {show(reason)}")
    elif len(reason) > MAX_REASON:
        errors.add(path, f"is {len(reason)} characters; the maximum is {MAX_REASON}")


def _check_sequence_extras(names: dict[str, Any], path: str, errors: FieldErrors) -> None:
    # The optional keys accept null as "not given".
    interval = names.get("interval")
    if interval is not None and (not is_number(interval) or interval <= 0):
        errors.add(f"{path}.interval", f"must be a number > 0, got {show(interval)}")
    unit = names.get("unit")
    if unit is not None and (not isinstance(unit, str) or not unit.strip()):
        errors.add(f"{path}.unit", f"must be a non-empty string such as seconds, got {show(unit)}")
    start = names.get("start_value")
    if start is not None and not (is_number(start) or isinstance(start, str)):
        errors.add(f"{path}.start_value", f"must be a number or a string, got {type_name(start)}")


def _check_tabular(schema: dict[str, Any], errors: FieldErrors) -> None:
    errors.exact_keys(schema, "schema", ("kind", "row_count", "columns", "dtypes"))
    if "row_count" in schema:
        rows = schema["row_count"]
        if not is_int(rows) or rows < 0:
            errors.add("schema.row_count", f"must be an integer ≥ 0, got {type_name(rows)} {show(rows)}")
    columns: list[str] | None = None
    if "columns" in schema:
        columns = _check_columns(schema["columns"], errors)
    if "dtypes" in schema:
        _check_dtypes(schema["dtypes"], columns, errors)


def _check_columns(columns: object, errors: FieldErrors) -> list[str] | None:
    """Return the distinct string column names, or None when ``columns`` is not a list."""
    if not isinstance(columns, list):
        errors.add("schema.columns", f"must be a list of column names, got {type_name(columns)}")
        return None
    if len(columns) > MAX_COLUMNS:
        errors.add("schema.columns", f"has {len(columns):,} columns; the maximum is {MAX_COLUMNS:,}")
    first: dict[str, int] = {}
    for i, column in enumerate(columns):
        path = join_path("schema.columns", i)
        if not isinstance(column, str):
            errors.add(path, f"must be a string, got {type_name(column)}")
        elif column in first:
            errors.add(path, f"duplicate column {show(column)} (also schema.columns[{first[column]}])")
        else:
            first[column] = i
            if len(column) > MAX_NAME:
                errors.add(path, f"is {len(column)} characters; the maximum is {MAX_NAME}")
    return list(first)


def _check_dtypes(dtypes: object, columns: list[str] | None, errors: FieldErrors) -> None:
    if not isinstance(dtypes, dict):
        errors.add("schema.dtypes", f"must be an object mapping column → dtype, got {type_name(dtypes)}")
        return
    known = set(columns) if columns is not None else None
    for key, dtype in dtypes.items():
        if not isinstance(key, str):
            errors.add("schema.dtypes", f"keys must be column names (strings), got {show(key)}")
            continue
        path = join_path("schema.dtypes", key)
        if known is not None and key not in known:
            errors.add(path, f"is not in schema.columns.{suggest(key, known)} dtypes needs exactly one "
                             "entry per column")
        elif not isinstance(dtype, str) or not dtype.strip():
            errors.add(path, f"must be a non-empty dtype string such as int64, got {show(dtype)}")
    for column in columns or ():
        if column not in dtypes:
            errors.add(join_path("schema.dtypes", column), "is missing: every column needs a dtype")


def _check_file(schema: dict[str, Any], errors: FieldErrors) -> None:
    errors.exact_keys(schema, "schema", ("kind", "content_type"))
    if "content_type" in schema:
        ctype = schema["content_type"]
        if not isinstance(ctype, str) or not ctype.strip():
            errors.add("schema.content_type", f"must be a non-empty MIME type such as application/json, "
                                              f"got {show(ctype)}")
        elif len(ctype) > MAX_NAME:
            errors.add("schema.content_type", f"is {len(ctype)} characters; the maximum is {MAX_NAME}")
