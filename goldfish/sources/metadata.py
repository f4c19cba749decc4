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
from goldfish.sources.metadata_schema import KIND_FOR_FORMAT, check_schema

SCHEMA_VERSION = 1
MAX_DOCUMENT_BYTES = 1_000_000
MAX_NODES = 100_000  # every object, array and scalar value counts; keys do not
MAX_DEPTH = 20
MAX_DESCRIPTION = 4000
MIN_DESCRIPTION = 20
MAX_SIZE_BYTES = 10**15

Format = Literal["npy", "npz", "csv", "file"]
Role = Literal["features", "labels", "embeddings", "weights", "metadata", "index", "unknown"]
Delimiter = Literal[",", ";", "|", "\t", ":"]
Status = Literal["ok", "missing", "invalid", "future"]

FORMATS: tuple[str, ...] = ("npy", "npz", "csv", "file")
DELIMITERS: tuple[str, ...] = (",", ";", "|", "\t", ":")
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
        check_schema(metadata, errors, fmt)
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
