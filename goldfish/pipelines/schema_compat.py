"""Whether two schema contracts agree: an upstream output against the input that reads it, or a
registered source's metadata schema against the input that declares it.

Rules (``producer`` writes, ``consumer`` reads):
- the kinds must be equal (a ``json`` input may read a ``file`` source whose content type is JSON);
- tensor: equal dtype (``float32`` == ``f4``), equal rank, and equal dimensions except where either
  side has a wildcard (``null`` or ``-1``); with ``arrays`` every array the consumer names must be
  produced and agree; a single-array side is compared with the other side's ``primary_array`` (or
  its only array); ``vocab_size`` must agree when both give it;
- tabular: every column the consumer lists must be produced (extra produced columns are fine,
  order does not matter), and dtypes given on both sides must agree;
- file: content types must agree when both give one.
Schemas must be placeholder-free (resolve them first).
"""

from __future__ import annotations

import functools
from typing import Any

from goldfish.pipelines.signal_schema import Contract, TabularSchema, TensorArray, TensorSchema, parse_contract

_Single = tuple[Any, Any, Any]  # shape, dtype, rank


@functools.lru_cache(maxsize=1024)
def _dtype_key(text: str) -> str:
    import numpy as np

    try:
        return str(np.dtype(text).str)
    except (TypeError, ValueError, SyntaxError):
        return text.strip().lower()


def dtypes_equal(a: str, b: str) -> bool:
    return a == b or _dtype_key(a) == _dtype_key(b)


def is_wildcard(dim: Any) -> bool:
    return dim is None or dim == -1


def dims_compatible(a: Any, b: Any) -> bool:
    return is_wildcard(a) or is_wildcard(b) or a == b


def _rank(shape: Any, rank: Any) -> int | None:
    if isinstance(shape, list):
        return len(shape)
    return rank if isinstance(rank, int) else None


def _compare_single(what: str, produced: _Single, expected: _Single) -> list[str]:
    (p_shape, p_dtype, p_rank), (c_shape, c_dtype, c_rank) = produced, expected
    problems: list[str] = []
    if isinstance(p_dtype, str) and isinstance(c_dtype, str) and not dtypes_equal(p_dtype, c_dtype):
        problems.append(f"{what}dtype differs: produced {p_dtype}, expected {c_dtype}")
    pr, cr = _rank(p_shape, p_rank), _rank(c_shape, c_rank)
    if pr is not None and cr is not None and pr != cr:
        problems.append(
            f"{what}rank differs: produced {pr} dimensions {_show(p_shape)}, expected {cr} {_show(c_shape)}"
        )
    elif isinstance(p_shape, list) and isinstance(c_shape, list):
        bad = [i for i, (a, b) in enumerate(zip(p_shape, c_shape, strict=True)) if not dims_compatible(a, b)]
        if bad:
            dims = ", ".join(f"dim {i}: produced {p_shape[i]}, expected {c_shape[i]}" for i in bad)
            problems.append(f"{what}shape {_show(p_shape)} does not match {_show(c_shape)} ({dims})")
    return problems


def _show(shape: Any) -> str:
    if not isinstance(shape, list):
        return "(any)" if shape is None else str(shape)
    return "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"


def _single(node: TensorSchema | TensorArray) -> _Single:
    return node.shape, node.dtype, getattr(node, "rank", None)


def _primary(schema: TensorSchema) -> tuple[str, TensorArray] | None:
    arrays = schema.arrays or {}
    if isinstance(schema.primary_array, str) and schema.primary_array in arrays:
        return schema.primary_array, arrays[schema.primary_array]
    if len(arrays) == 1:
        return next(iter(arrays.items()))
    return None


def _compare_tensors(producer: TensorSchema, consumer: TensorSchema) -> list[str]:
    problems: list[str] = []
    if (
        isinstance(producer.vocab_size, int)
        and isinstance(consumer.vocab_size, int)
        and producer.vocab_size != consumer.vocab_size
    ):
        problems.append(f"vocab_size differs: produced {producer.vocab_size}, expected {consumer.vocab_size}")
    if producer.arrays is None and consumer.arrays is None:
        return problems + _compare_single("", _single(producer), _single(consumer))
    if producer.arrays is not None and consumer.arrays is not None:
        for name, wanted in consumer.arrays.items():
            made = producer.arrays.get(name)
            if made is None:
                problems.append(
                    f"array {name!r} is not produced (produced arrays: {', '.join(producer.arrays)})"
                )
            else:
                problems += _compare_single(f"array {name!r}: ", _single(made), _single(wanted))
        return problems
    if producer.arrays is not None:  # the consumer reads one array: the producer's primary one
        primary = _primary(producer)
        if primary is None:
            reason = (
                f"the producer writes arrays {', '.join(producer.arrays)} without a primary_array,"
                " so a single-array input cannot tell which one it gets"
            )
            return [*problems, reason]
        return problems + _compare_single(f"array {primary[0]!r}: ", _single(primary[1]), _single(consumer))
    assert consumer.arrays is not None
    if len(consumer.arrays) != 1:
        return [
            *problems,
            f"arrays {', '.join(consumer.arrays)} are expected but the producer writes a single array",
        ]
    name, wanted = next(iter(consumer.arrays.items()))
    return problems + _compare_single(f"array {name!r}: ", _single(producer), _single(wanted))


def _compare_tables(producer: TabularSchema, consumer: TabularSchema) -> list[str]:
    problems: list[str] = []
    if isinstance(producer.columns, list) and isinstance(consumer.columns, list):
        missing = [c for c in consumer.columns if c not in producer.columns]
        if missing:
            problems.append(
                f"columns {', '.join(missing)} are not produced (produced: {', '.join(producer.columns)})"
            )
    if isinstance(producer.dtypes, dict) and isinstance(consumer.dtypes, dict):
        for column, dtype in consumer.dtypes.items():
            made = producer.dtypes.get(column)
            if isinstance(made, str) and isinstance(dtype, str) and not dtypes_equal(made, dtype):
                problems.append(f"column {column!r} dtype differs: produced {made}, expected {dtype}")
    return problems


def compare_schemas(producer: Contract | None, consumer: Contract | None) -> list[str]:
    """Why ``consumer`` cannot read what ``producer`` describes; empty when they agree (or either is null)."""
    if producer is None or consumer is None:
        return []
    if producer.kind != consumer.kind:
        if consumer.kind == "json" and producer.kind == "file":
            content = getattr(producer, "content_type", None)
            if content is None or "json" in str(content).lower():
                return []
        return [f"schema kind differs: produced {producer.kind}, expected {consumer.kind}"]
    if isinstance(producer, TensorSchema) and isinstance(consumer, TensorSchema):
        return _compare_tensors(producer, consumer)
    if isinstance(producer, TabularSchema) and isinstance(consumer, TabularSchema):
        return _compare_tables(producer, consumer)
    p_type, c_type = getattr(producer, "content_type", None), getattr(consumer, "content_type", None)
    if p_type and c_type and p_type != c_type:
        return [f"content_type differs: produced {p_type}, expected {c_type}"]
    return []


def source_contract(metadata_schema: dict[str, Any]) -> Contract:
    """A registered source's metadata ``schema`` section (or whole metadata) as a contract.

    Raises pydantic ValidationError when it cannot be read as one."""
    if "schema" in metadata_schema and "schema_version" in metadata_schema:
        metadata_schema = metadata_schema["schema"]
    contract = parse_contract(metadata_schema)
    if contract is None:
        raise ValueError("the source metadata has no schema")
    return contract
