"""Schema contracts of pipeline signals (the ``schema:`` of every input and output).

Four kinds, told apart by ``kind``: ``tensor``, ``tabular`` (also inferred when ``kind`` is left out
and ``columns``/``dtypes`` are given), ``json`` and ``file``. Any value except ``kind`` may be a
whole-string placeholder ``"{param}"``, replaced by the top-level key ``param`` of the merged stage
config before contracts are compared (``stage_config.resolve_placeholders``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    model_validator,
)

from goldfish.issues import custom_error
from goldfish.names import did_you_mean

PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", re.ASCII)
SCHEMA_KINDS = ("tensor", "tabular", "json", "file")
COMMON_DTYPES = (
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex64",
    "complex128",
    "object",
    "str",
)
_PLACEHOLDER_HINT = 'or a whole-string placeholder "{param}" naming a top-level stage config key'


def placeholder_name(value: object) -> str | None:
    """``"lr"`` for the value ``"{lr}"``; None for anything that is not a whole-string placeholder."""
    if isinstance(value, str):
        match = PLACEHOLDER_RE.fullmatch(value)
        if match:
            return match.group(1)
    return None


def iter_placeholders(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(path, param)`` for every placeholder inside a schema value (dict keys excluded)."""
    name = placeholder_name(value)
    if name is not None:
        yield path, name
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_placeholders(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_placeholders(item, f"{path}[{index}]")


def _allow_placeholder(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(check)
    def wrapper(value: Any) -> Any:
        if placeholder_name(value) is not None:
            return value
        return check(value)

    return wrapper


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dim(value: Any, index: int) -> int | str | None:
    if value is None or placeholder_name(value) is not None:
        return value
    if _is_int(value) and value >= -1:
        return value
    raise custom_error(
        f"shape[{index}] is {value!r}; a dimension must be an integer >= 0, or null / -1 for any size.",
        f"Use e.g. shape: [null, 768] (null = any size), {_PLACEHOLDER_HINT}.",
        sub=f"[{index}]",
    )


@_allow_placeholder
def _shape(value: Any) -> list[int | str | None] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise custom_error(
            f"shape must be a list of dimensions, got {value!r}.",
            f"Use e.g. shape: [null, 768], {_PLACEHOLDER_HINT}.",
        )
    return [_dim(item, index) for index, item in enumerate(value)]


@functools.lru_cache(maxsize=512)
def _numpy_dtype_ok(text: str) -> bool:
    import numpy as np  # numpy is only needed when a tensor schema names a dtype

    try:
        np.dtype(text)
    except (TypeError, ValueError, SyntaxError):
        return False
    return True


@_allow_placeholder
def _dtype(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip() == value and value and _numpy_dtype_ok(value):
        return value
    hint = did_you_mean(value, COMMON_DTYPES) if isinstance(value, str) else ""
    raise custom_error(
        f"dtype {value!r} is not a numpy dtype.{hint}",
        f"Use a numpy dtype name such as float32, int64, uint8 or bool, {_PLACEHOLDER_HINT}.",
    )


def _non_negative_int(field: str) -> Callable[[Any], Any]:
    @_allow_placeholder
    def check(value: Any) -> int | None:
        if value is None or (_is_int(value) and value >= 0):
            return value
        raise custom_error(
            f"{field} must be an integer >= 0, got {value!r}.",
            f"Give {field} as a whole number, {_PLACEHOLDER_HINT}.",
        )

    return check


@_allow_placeholder
def _vocab_size(value: Any) -> int | None:
    if value is None or (_is_int(value) and value > 0):
        return value
    raise custom_error(
        f"vocab_size must be an integer > 0, got {value!r}.",
        f"Give the vocabulary size as a positive whole number, {_PLACEHOLDER_HINT}.",
    )


def _text(field: str) -> Callable[[Any], Any]:
    @_allow_placeholder
    def check(value: Any) -> str | None:
        if value is None or (isinstance(value, str) and value.strip()):
            return value
        raise custom_error(f"{field} must be a non-empty string, got {value!r}.", f"Give {field} as text.")

    return check


@_allow_placeholder
def _columns(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise custom_error(
            f"columns must be a list of column names, got {value!r}.",
            f'Use e.g. columns: ["price", "volume"], {_PLACEHOLDER_HINT}.',
        )
    seen: set[str] = set()
    for index, item in enumerate(value):
        if placeholder_name(item) is not None:
            continue
        if not isinstance(item, str) or not item:
            raise custom_error(
                f"columns[{index}] is {item!r}; column names are non-empty strings.",
                "Quote the column name.",
                sub=f"[{index}]",
            )
        if item in seen:
            raise custom_error(
                f"column {item!r} is listed twice.", "List each column once.", sub=f"[{index}]"
            )
        seen.add(item)
    return value


@_allow_placeholder
def _dtypes(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise custom_error(
            f"dtypes must map column names to dtype names, got {value!r}.",
            "Use e.g. dtypes: {price: float32, volume: int64}.",
        )
    for column, dtype in value.items():
        if not isinstance(column, str):
            raise custom_error(f"dtypes key {column!r} is not a column name.", "Quote the column name.")
        if placeholder_name(dtype) is None and not (isinstance(dtype, str) and dtype.strip()):
            raise custom_error(
                f"dtypes.{column} is {dtype!r}; a dtype must be a non-empty string.",
                'Use a pandas/numpy dtype name such as "float32", "int64" or "string".',
                sub=f".{column}",
            )
    return value


Shape = Annotated[list[int | str | None] | str | None, PlainValidator(_shape)]
DType = Annotated[str | None, PlainValidator(_dtype)]


class TensorArray(BaseModel):
    """One named array of a multi-array tensor signal (npz file or a directory of .npy files)."""

    model_config = ConfigDict(extra="forbid")

    shape: Shape = Field(default=None, description="Dimensions; null or -1 means any size")
    dtype: DType = Field(default=None, description="numpy dtype name, e.g. float32")
    role: Annotated[str | None, PlainValidator(_text("role"))] = Field(
        default=None, description="What the array holds (features, labels, embeddings, ...)"
    )
    feature_names: Any = Field(
        default=None,
        description="Accepted so an array from source metadata can be pasted as is; not compared here",
    )


class TensorSchema(BaseModel):
    """An n-dimensional array: one array (``shape``/``dtype``/``rank``) or several (``arrays``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["tensor"]
    shape: Shape = Field(default=None, description="Dimensions; null or -1 means any size")
    dtype: DType = Field(default=None, description="numpy dtype name, e.g. float32")
    rank: Annotated[int | str | None, PlainValidator(_non_negative_int("rank"))] = Field(
        default=None, description="Number of dimensions; must equal len(shape) when both are given"
    )
    arrays: dict[str, TensorArray] | None = Field(default=None, description="Named arrays (npz or directory)")
    primary_array: Annotated[str | None, PlainValidator(_text("primary_array"))] = Field(
        default=None, description="The array used when a single array is loaded; one of `arrays`"
    )
    vocab_size: Annotated[int | str | None, PlainValidator(_vocab_size)] = Field(
        default=None, description="For token ids: the vocabulary size (used by vocab_utilization stats)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> TensorSchema:
        if self.arrays is not None:
            if not self.arrays:
                raise custom_error(
                    "arrays is empty.", "Name at least one array, or use shape/dtype.", sub=".arrays"
                )
            mixed = [f for f in ("shape", "dtype", "rank") if getattr(self, f) is not None]
            if mixed:
                raise custom_error(
                    f"a tensor schema uses either arrays or {'/'.join(mixed)}, not both.",
                    "Move shape/dtype into the entry of `arrays` they describe, or drop `arrays`.",
                )
            primary = self.primary_array
            if primary is not None and placeholder_name(primary) is None and primary not in self.arrays:
                raise custom_error(
                    f"primary_array {primary!r} is not one of the arrays ({', '.join(self.arrays)})."
                    + did_you_mean(primary, self.arrays),
                    "Set primary_array to the name of one entry of `arrays`.",
                    sub=".primary_array",
                )
        elif self.primary_array is not None:
            raise custom_error(
                "primary_array is set but there are no arrays.",
                "Add `arrays:` or remove primary_array.",
                sub=".primary_array",
            )
        if _is_int(self.rank) and isinstance(self.shape, list) and self.rank != len(self.shape):
            raise custom_error(
                f"rank {self.rank} does not match shape {self.shape} ({len(self.shape)} dimensions).",
                "Make rank equal to the number of dimensions in shape, or drop rank.",
                sub=".rank",
            )
        return self


class TabularSchema(BaseModel):
    """A table (csv, DataFrame): ordered columns and their dtypes."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["tabular"]
    columns: Annotated[list[str] | str | None, PlainValidator(_columns)] = Field(
        default=None, description="Column names in order"
    )
    dtypes: Annotated[dict[str, str] | str | None, PlainValidator(_dtypes)] = Field(
        default=None, description="Column name → dtype name (pandas/numpy); keys must be listed in columns"
    )
    row_count: Annotated[int | str | None, PlainValidator(_non_negative_int("row_count"))] = Field(
        default=None, description="Expected number of rows (informational)"
    )

    @model_validator(mode="after")
    def _dtypes_in_columns(self) -> TabularSchema:
        if isinstance(self.columns, list) and isinstance(self.dtypes, dict):
            if any(placeholder_name(c) is not None for c in self.columns):
                return self
            unknown = [c for c in self.dtypes if c not in self.columns]
            if unknown:
                raise custom_error(
                    f"dtypes name columns that are not in columns: {', '.join(unknown)}."
                    + did_you_mean(unknown[0], self.columns),
                    "Add them to columns, or fix the names in dtypes.",
                    sub=".dtypes",
                )
        return self


class JsonSchema(BaseModel):
    """A JSON document (dict or list)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["json"]


class FileSchema(BaseModel):
    """An opaque file or blob."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["file"]
    content_type: Annotated[str | None, PlainValidator(_text("content_type"))] = Field(
        default=None, description="MIME type, e.g. application/json"
    )


Contract = TensorSchema | TabularSchema | JsonSchema | FileSchema


def _infer_kind(value: Any) -> Any:
    if isinstance(value, dict) and "kind" not in value:
        if "columns" in value or "dtypes" in value:
            return {**value, "kind": "tabular"}
        raise custom_error(
            "schema has no `kind:`.",
            "Add kind: tensor, tabular, json or file (e.g. {kind: tensor, shape: [null, 768],"
            " dtype: float32}),"
            " or write `schema: null` to opt out of the contract.",
        )
    if value is not None and not isinstance(value, (dict, BaseModel)):
        raise custom_error(
            f"schema must be a mapping, got {value!r}.",
            "Write e.g. schema: {kind: tensor, shape: [null, 768], dtype: float32}, or `schema:"
            " null` to opt out.",
        )
    return value


SignalContract = Annotated[
    Annotated[TensorSchema | TabularSchema | JsonSchema | FileSchema, Field(discriminator="kind")],
    BeforeValidator(_infer_kind),
]
_CONTRACT_ADAPTER: TypeAdapter[Contract | None] = TypeAdapter(SignalContract | None)


def parse_contract(raw: Any) -> Contract | None:
    """Validate a raw schema dict (or None); raises pydantic ValidationError."""
    return _CONTRACT_ADAPTER.validate_python(raw)


def contract_dict(contract: Contract | None) -> dict[str, Any] | None:
    """The contract as a plain dict (as written, unset fields left out)."""
    return None if contract is None else contract.model_dump(exclude_none=True)


def has_placeholders(contract: Contract | None) -> bool:
    return any(True for _ in iter_placeholders(contract_dict(contract)))
