"""Strict validation of data-source metadata (register_source, promote_artifact, source updates).

Goldfish never infers what data means: every source carries a document saying what it is
(``description``), how it is encoded (``source``) and what its parts mean (``schema``). The
rules are those of "Data Source Metadata (Required, Strict)" in the Goldfish skill; every
problem is reported at once, each at its field path.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from goldfish.errors import InvalidInput, NotFound
from goldfish.fielderrors import FieldErrors, is_int, is_number, join_path, show, suggest, type_name

SCHEMA_VERSION = 1
MAX_DOCUMENT_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_DEPTH = 20
MAX_DESCRIPTION = 4000
MIN_DESCRIPTION = 20
MAX_SIZE_BYTES = 10**15
MAX_ARRAYS = 1000
MAX_DIMS = 32
MAX_NAME = 256
MAX_FEATURE_NAMES = 1_000_000
MAX_FEATURE_NAME = 1024
MAX_SAMPLE = 100
MAX_REASON = 4000
MAX_COLUMNS = 100_000

Format = Literal["npy", "npz", "csv", "file"]
Role = Literal["features", "labels", "embeddings", "weights", "metadata", "index", "unknown"]
Delimiter = Literal[",", ";", "|", "\t", ":"]
Status = Literal["ok", "missing", "invalid", "future"]

FORMATS: tuple[str, ...] = ("npy", "npz", "csv", "file")
ROLES: tuple[str, ...] = ("features", "labels", "embeddings", "weights", "metadata", "index", "unknown")
DELIMITERS: tuple[str, ...] = (",", ";", "|", "\t", ":")
KIND_FOR_FORMAT: dict[str, str] = {"npy": "tensor", "npz": "tensor", "csv": "tabular", "file": "file"}
FEATURE_NAME_KINDS: tuple[str, ...] = ("list", "pattern", "none", "sequence")
_TOP_KEYS = ("schema_version", "description", "source", "schema")
_SOURCE_KEYS = ("format", "size_bytes", "created_at")


class _Doc(BaseModel):
    # strict: a validated document is re-read without coercion, so True never becomes 1.
    model_config = ConfigDict(extra="forbid", strict=True)


class CsvFormatParams(_Doc):
    delimiter: Delimiter = Field(description="Single field separator: one of , ; | TAB :")


class SourceSection(_Doc):
    """How the bytes are encoded; nothing about meaning."""

    format: Format = Field(description="npy (one array), npz (several arrays), csv (table) or file (opaque blob)")
    size_bytes: int | None = Field(
        ge=1, le=MAX_SIZE_BYTES, description="Size in bytes (1..1e15), or null when unknown at authoring time"
    )
    created_at: str = Field(description="ISO-8601 UTC timestamp ending in Z, e.g. 2025-12-24T12:00:00Z")
    format_params: CsvFormatParams | None = Field(default=None, description="Required for csv, forbidden otherwise")


class FeatureNamesList(_Doc):
    kind: Literal["list"] = Field(description="Explicit names, one per element of the last dimension")
    values: list[str] = Field(description="Exactly shape[-1] names (none for a scalar), each ≤1024 characters")


class FeatureNamesPattern(_Doc):
    kind: Literal["pattern"] = Field(description="Names generated from a template")
    template: str = Field(description="Template containing {i}, e.g. token_{i}; ≤256 characters")
    start: int = Field(description="Value of {i} for the first name")
    count: int = Field(ge=0, description="Number of names; equals shape[-1]")
    sample: list[str] = Field(description="Up to 100 example names")


class FeatureNamesNone(_Doc):
    kind: Literal["none"] = Field(description="No names: only for scalar arrays (shape [])")
    reason: str = Field(description="Why there are no names (1..4000 characters)")


class FeatureNamesSequence(_Doc):
    kind: Literal["sequence"] = Field(description="Positions along an ordered axis (time steps, offsets)")
    reason: str = Field(description="What the positions are (1..4000 characters)")
    interval: int | float | None = Field(default=None, gt=0, description="Spacing between positions")
    unit: str | None = Field(default=None, description="Unit of interval/start_value, e.g. seconds")
    start_value: int | float | str | None = Field(default=None, description="Position of the first element")


FeatureNames = Annotated[
    FeatureNamesList | FeatureNamesPattern | FeatureNamesNone | FeatureNamesSequence,
    Field(discriminator="kind"),
]


class TensorArray(_Doc):
    role: Role = Field(description="What this array is for")
    shape: list[int] = Field(description="Exact dimensions (≤32, each ≥0); [] for a scalar; no wildcards")
    dtype: str = Field(description="Element type, e.g. float32")
    feature_names: FeatureNames = Field(description="Names of the last dimension")


class TensorSchema(_Doc):
    kind: Literal["tensor"] = Field(description="For npy and npz sources")
    arrays: dict[str, TensorArray] = Field(description="Array name → description; npy holds exactly one")
    primary_array: str = Field(description="Name of the array most consumers want")


class TabularSchema(_Doc):
    kind: Literal["tabular"] = Field(description="For csv sources")
    row_count: int = Field(ge=0, description="Number of data rows")
    columns: list[str] = Field(description="Unique column names in file order")
    dtypes: dict[str, str] = Field(description="Column → dtype, exactly one entry per column")


class FileSchema(_Doc):
    kind: Literal["file"] = Field(description="For opaque blobs")
    content_type: str = Field(description="MIME type, e.g. application/json (≤256 characters)")


SourceSchema = Annotated[TensorSchema | TabularSchema | FileSchema, Field(discriminator="kind")]


class SourceMetadata(_Doc):
    """The full metadata document of a data source, artifact or dataset.

    The models type and document the shape; the cross-field rules (counts vs shapes, format vs
    kind, csv delimiter) live in ``validate_source_metadata``, which is how documents get built.
    """

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    schema_version: Literal[1] = Field(description="Always the integer 1")
    description: str = Field(description="What the data is and where it came from (20..4000 characters)")
    source: SourceSection = Field(description="Encoding: format, size, creation time")
    # "schema" would shadow a BaseModel attribute, hence the alias.
    schema_: SourceSchema = Field(alias="schema", description="Meaning: tensor, tabular or file schema")

    def to_dict(self) -> dict[str, Any]:
        """The document as the agent wrote it (optional keys it left out stay out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


# --------------------------------------------------------------------------- validation


def validate_source_metadata(
    metadata: object,
    *,
    require_size: bool = False,
    expect_description: str | None = None,
    expect_format: str | None = None,
    expect_size: int | None = None,
) -> SourceMetadata:
    """Check every rule; raise one InvalidInput listing all problems, or return the parsed document.

    ``expect_*`` are the tool's own arguments, which must agree with the document.
    """
    errors = FieldErrors("metadata")
    fmt: str | None = None
    if metadata is None:
        errors.add("metadata", "metadata is required for every source")
    elif not isinstance(metadata, dict):
        errors.add("metadata", f"must be a JSON object, got {type_name(metadata)}")
    else:
        _check_json_limits(metadata, errors)
        errors.exact_keys(metadata, "", _TOP_KEYS)
        _check_version(metadata, errors)
        _check_description(metadata, errors, expect_description)
        fmt = _check_source(metadata, errors, require_size, expect_format, expect_size)
        _check_schema(metadata, errors, fmt)
    errors.raise_if_any(_fix(fmt))
    return SourceMetadata.model_validate(metadata)


def metadata_status(metadata: object) -> Status:
    """State of stored metadata: missing (null), future (schema_version > 1, kept as is), ok or invalid."""
    if metadata is None:
        return "missing"
    if isinstance(metadata, dict):
        version = metadata.get("schema_version")
        if is_int(version) and version > SCHEMA_VERSION:
            return "future"
    try:
        validate_source_metadata(metadata)
    except InvalidInput:
        return "invalid"
    return "ok"


def infer_size_and_hash(path: Path) -> tuple[int, str]:
    """Size in bytes and sha256 hex digest of a local file, read in 1 MiB chunks."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInput(
            f"{path} is a directory. Directory sources are rejected.",
            fix="Register a single file: save arrays as one npz, or pack the directory into an archive "
            "and register it with format file.",
        )
    if not path.exists():
        raise NotFound(f"File {path} does not exist.", fix="Check the path; it must be a local file.")
    if not path.is_file():
        raise InvalidInput(f"{path} is not a regular file.", fix="Register a regular file.")
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# --------------------------------------------------------------------------- document parts


def _check_json_limits(doc: dict[str, Any], errors: FieldErrors) -> None:
    """Node count, nesting depth, plain-JSON values and serialised size, walked without recursion."""
    nodes = 0
    too_deep: str | None = None
    stack: list[tuple[object, str, int]] = [(doc, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            break
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                too_deep = too_deep or path
                continue  # also stops self-referencing structures
            if isinstance(value, dict):
                # Non-string keys are reported by the key checks of the object that holds them.
                stack.extend((v, join_path(path, k), depth + 1) for k, v in value.items() if isinstance(k, str))
            else:
                stack.extend((v, join_path(path, i), depth + 1) for i, v in enumerate(value))
        elif isinstance(value, float) and not is_number(value):
            errors.add(path, "NaN and Infinity are not JSON numbers")
            errors.mute(path)
        elif value is not None and not isinstance(value, (str, int, float)):
            errors.add(path, f"a Python {type(value).__name__} is not a JSON value; use an object, array, "
                             "string, number, boolean or null")
            errors.mute(path)
    if nodes > MAX_NODES:
        errors.add("metadata", f"has more than {MAX_NODES:,} values; describe long name lists with "
                               'feature_names {"kind": "pattern"} instead of listing every name')
    if too_deep is not None:
        errors.add("metadata", f"is nested more than {MAX_DEPTH} levels deep (at {too_deep})")
        return
    try:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return  # the offending values were reported above
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        errors.add("metadata", "contains a lone surrogate character (\\ud800-\\udfff), which is not valid "
                               "UTF-8; remove it")
        return
    if size > MAX_DOCUMENT_BYTES:
        errors.add("metadata", f"is {size:,} bytes as JSON; the maximum is {MAX_DOCUMENT_BYTES:,}")


def _check_version(doc: dict[str, Any], errors: FieldErrors) -> None:
    if "schema_version" not in doc:
        return
    version = doc["schema_version"]
    if is_int(version) and version == SCHEMA_VERSION:
        return
    if is_int(version) and version > SCHEMA_VERSION:
        errors.add("schema_version", f"{version} is newer than this Goldfish understands; use 1")
    else:
        errors.add("schema_version", f"must be the integer 1, got {type_name(version)} {show(version)}")


def _check_description(doc: dict[str, Any], errors: FieldErrors, expect: str | None) -> None:
    if "description" not in doc:
        return
    text = doc["description"]
    if not isinstance(text, str):
        errors.add("description", f"must be a string, got {type_name(text)}")
        return
    stripped = len(text.strip())
    if stripped < MIN_DESCRIPTION:
        errors.add("description", f"is {stripped} characters (ignoring surrounding spaces); write at least "
                                  f"{MIN_DESCRIPTION}: what the data is and where it came from")
    if len(text) > MAX_DESCRIPTION:
        errors.add("description", f"is {len(text):,} characters; the maximum is {MAX_DESCRIPTION}")
    if expect is not None and expect.strip() != text.strip():
        errors.add("description", f"differs from the description argument ({show(expect)}); make them equal "
                                  "or leave the argument out")


def _check_source(
    doc: dict[str, Any],
    errors: FieldErrors,
    require_size: bool,
    expect_format: str | None,
    expect_size: int | None,
) -> str | None:
    """Validate ``source``; return its format when that is valid (the schema kind depends on it)."""
    if "source" not in doc:
        return None
    source = doc["source"]
    if not isinstance(source, dict):
        errors.add("source", f'must be an object {{"format", "size_bytes", "created_at"}}, got {type_name(source)}')
        return None
    errors.exact_keys(source, "source", _SOURCE_KEYS, ("format_params",))
    fmt = _check_format(source, errors, expect_format)
    _check_size(source, errors, require_size, expect_size)
    if "created_at" in source:
        _check_created_at(source["created_at"], errors)
    if fmt is not None and fmt != "csv":
        if "format_params" in source:
            errors.add("source.format_params", f'only csv takes format_params; remove it for format "{fmt}"')
    elif "format_params" in source:
        _check_format_params(source["format_params"], errors)
    elif fmt == "csv":
        errors.add("source.format_params", 'required for csv: {"delimiter": ","} (one of , ; | TAB :)')
    return fmt


def _check_format(source: dict[str, Any], errors: FieldErrors, expect: str | None) -> str | None:
    if "format" not in source:
        return None
    fmt = source["format"]
    if fmt == "directory":
        errors.add("source.format", "Directory sources are rejected: register one file (save arrays as "
                                    "npz, or pack the directory into an archive with format file)")
        return None
    if not isinstance(fmt, str) or fmt not in FORMATS:
        hint = suggest(fmt, FORMATS)
        errors.add("source.format", f"unknown format {show(fmt)}.{hint} Use one of {', '.join(FORMATS)}")
        return None
    if expect is not None and expect != fmt:
        errors.add("source.format", f'is "{fmt}" but the format argument is {show(expect)}; they must match')
    return str(fmt)


def _check_size(source: dict[str, Any], errors: FieldErrors, require: bool, expect: int | None) -> None:
    if "size_bytes" not in source:
        return
    size = source["size_bytes"]
    if size is None:
        if require:
            errors.add("source.size_bytes", "is required here: give the file size in bytes (null is only "
                                            "for stage outputs whose size is unknown when declared)")
    elif not is_int(size):
        errors.add("source.size_bytes", f"must be an integer number of bytes or null, got {type_name(size)} "
                                        f"{show(size)}")
    elif size < 1:
        errors.add("source.size_bytes", f"must be at least 1, got {size}")
    elif size > MAX_SIZE_BYTES:
        errors.add("source.size_bytes", f"must be at most 1e15 (1 PB), got {size}")
    if expect is not None and (type(expect) is not type(size) or expect != size):
        errors.add("source.size_bytes", f"is {show(size)} but the size_bytes argument is {show(expect)}; "
                                        "they must match")


def _check_created_at(value: object, errors: FieldErrors) -> None:
    example = "e.g. 2025-12-24T12:00:00Z"
    if not isinstance(value, str):
        errors.add("source.created_at", f"must be an ISO-8601 UTC string, {example}; got {type_name(value)}")
        return
    if not value.endswith("Z"):
        errors.add("source.created_at", f"must be UTC and end in Z, {example}; got {show(value)}")
        return
    try:
        datetime.fromisoformat(value)
    except ValueError:
        errors.add("source.created_at", f"is not an ISO-8601 timestamp, {example}; got {show(value)}")


def _check_format_params(params: object, errors: FieldErrors) -> None:
    path = "source.format_params"
    if not isinstance(params, dict):
        errors.add(path, f'must be an object {{"delimiter": ","}}, got {type_name(params)}')
        return
    errors.exact_keys(params, path, ("delimiter",))
    if "delimiter" in params and params["delimiter"] not in DELIMITERS:
        errors.add(f"{path}.delimiter", f"must be one character from , ; | TAB : (got {show(params['delimiter'])})")


def _check_schema(doc: dict[str, Any], errors: FieldErrors, fmt: str | None) -> None:
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


_SCHEMA_EXAMPLES = {
    "tensor": '{"kind": "tensor", "arrays": {"features": {"role": "features", "shape": [1000, 768], '
              '"dtype": "float32", "feature_names": {"kind": "list", "values": [<768 names>]}}}, '
              '"primary_array": "features"}',
    "tabular": '{"kind": "tabular", "row_count": 100000, "columns": ["col1", "col2"], '
               '"dtypes": {"col1": "float32", "col2": "int64"}}',
    "file": '{"kind": "file", "content_type": "application/json"}',
}


def _fix(fmt: str | None) -> str:
    params = ', "format_params": {"delimiter": ","}' if fmt == "csv" else ""
    source = (
        f'{{"format": "{fmt or "npy|npz|csv|file"}", "size_bytes": 123456, '
        f'"created_at": "2025-12-24T12:00:00Z"{params}}}'
    )
    if fmt:
        schema = _SCHEMA_EXAMPLES[KIND_FOR_FORMAT[fmt]]
    else:
        schema = "; ".join(f"{kind}: {text}" for kind, text in _SCHEMA_EXAMPLES.items())
    return (
        "Correct every field listed (details.errors) and resend the whole document, shaped as in "
        '"Data Source Metadata (Required, Strict)" of the Goldfish skill: {"schema_version": 1, '
        f'"description": "<20+ characters: what the data is, where it came from>", "source": {source}, '
        f'"schema": <schema>}} where schema is {schema}. Feature names: {{"kind": "list", "values": [...]}}, '
        '{"kind": "pattern", "template": "token_{i}", "start": 1, "count": <last dim>, "sample": [...]} or, '
        'for shape [], {"kind": "none", "reason": "..."}.'
    )
