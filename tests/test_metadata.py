"""Source metadata validation: the seed's examples pass, every rule fails at exactly its field path."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goldfish.errors import InvalidInput, NotFound
from goldfish.fielderrors import MAX_LISTED
from goldfish.sources.metadata import (
    SourceMetadata,
    TensorSchema,
    infer_size_and_hash,
    metadata_status,
    validate_source_metadata,
)

Doc = dict[str, Any]

# --------------------------------------------------------------------------- the seed's examples
# Copied from "Data Source Metadata (Required, Strict)" in the Goldfish skill. The seed shows the
# parts separately; a full document is the top-level structure holding a source and a schema.

SEED_TOP: Doc = {"schema_version": 1, "description": "Human/LLM description (min 20 chars)"}
SEED_SOURCE: Doc = {"format": "npy|npz|csv|file", "size_bytes": 123456, "created_at": "2025-12-24T12:00:00Z"}
SEED_CSV_PARAMS: Doc = {"format_params": {"delimiter": ","}}
SEED_TENSOR: Doc = {
    "kind": "tensor",
    "arrays": {
        "features": {
            "role": "features",
            "shape": [1000, 768],
            "dtype": "float32",
            "feature_names": {"kind": "list", "values": ["f1", "f2", "..."]},
        }
    },
    "primary_array": "features",
}
SEED_TABULAR: Doc = {
    "kind": "tabular",
    "row_count": 100000,
    "columns": ["col1", "col2"],
    "dtypes": {"col1": "float32", "col2": "int64"},
}
SEED_FILE: Doc = {"kind": "file", "content_type": "application/json"}
SEED_LIST: Doc = {"kind": "list", "values": ["f1", "f2"]}
SEED_PATTERN: Doc = {"kind": "pattern", "template": "token_{i}", "start": 1, "count": 50000, "sample": ["token_1", "token_2"]}
SEED_NONE: Doc = {"kind": "none", "reason": "scalar value"}


def seed_doc(fmt: str, schema: Doc) -> Doc:
    source = {**SEED_SOURCE, "format": fmt}
    if fmt == "csv":
        source.update(copy.deepcopy(SEED_CSV_PARAMS))
    return {**copy.deepcopy(SEED_TOP), "source": source, "schema": copy.deepcopy(schema)}


def seed_tensor(feature_names: Doc, shape: list[int]) -> Doc:
    schema = copy.deepcopy(SEED_TENSOR)
    schema["arrays"]["features"]["feature_names"] = copy.deepcopy(feature_names)
    schema["arrays"]["features"]["shape"] = shape
    return schema


def expanded_tensor() -> Doc:
    # The seed's list elides names with "..."; a real document lists all 768.
    return seed_tensor({"kind": "list", "values": [f"f{i}" for i in range(1, 769)]}, [1000, 768])


SEED_DOCS = {
    "npy tensor (list)": seed_doc("npy", expanded_tensor()),
    "npz tensor (list)": seed_doc("npz", expanded_tensor()),
    "npy tensor (list of 2)": seed_doc("npy", seed_tensor(SEED_LIST, [1000, 2])),
    "npy tensor (pattern)": seed_doc("npy", seed_tensor(SEED_PATTERN, [1000, 50000])),
    "npy tensor (none)": seed_doc("npy", seed_tensor(SEED_NONE, [])),
    "csv tabular": seed_doc("csv", SEED_TABULAR),
    "file": seed_doc("file", SEED_FILE),
}


@pytest.mark.parametrize("name", sorted(SEED_DOCS))
def test_seed_examples_are_accepted(name: str) -> None:
    doc = SEED_DOCS[name]
    before = copy.deepcopy(doc)
    model = validate_source_metadata(doc, require_size=True, expect_format=doc["source"]["format"],
                                     expect_size=123456, expect_description=doc["description"])
    assert isinstance(model, SourceMetadata)
    assert model.to_dict() == doc
    assert doc == before
    assert metadata_status(doc) == "ok"


def test_seed_tensor_with_elided_names_is_rejected_at_the_count() -> None:
    err = errors_of(seed_doc("npy", SEED_TENSOR))
    assert fields(err) == ["schema.arrays.features.feature_names.values"]
    assert "has 3 names but the last dimension of shape [1000, 768] is 768" in err.message


def test_model_exposes_parts() -> None:
    model = validate_source_metadata(SEED_DOCS["npy tensor (pattern)"])
    assert model.source.format == "npy"
    assert isinstance(model.schema_, TensorSchema)
    assert model.schema_.arrays["features"].feature_names.kind == "pattern"
    assert SourceMetadata.model_json_schema(by_alias=True)["properties"]["schema"]


# --------------------------------------------------------------------------- helpers


def errors_of(doc: object, **kwargs: Any) -> InvalidInput:
    before = copy.deepcopy(doc)
    with pytest.raises(InvalidInput) as info:
        validate_source_metadata(doc, **kwargs)
    assert doc == before  # validation never modifies its input
    err = info.value
    count = err.details["error_count"]
    assert err.message.startswith(f"{count} validation error{'s' if count != 1 else ''}: ")
    assert "Data Source Metadata (Required, Strict)" in (err.fix or "")
    return err


def fields(err: InvalidInput) -> list[str]:
    return [e["field"] for e in err.details["errors"]]


# --------------------------------------------------------------------------- valid documents

FORMATS = ("npy", "npz", "csv", "file")
NAME = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
TEXT = st.text(max_size=30)
NONBLANK = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
DTYPE = st.sampled_from(["float32", "float64", "int64", "uint8", "bool", "<U10", "object"])
ROLE = st.sampled_from(["features", "labels", "embeddings", "weights", "metadata", "index", "unknown"])
STAMP = st.builds(
    lambda d, frac: d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{d.microsecond:06d}" if frac else "") + "Z",
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    st.booleans(),
)


@st.composite
def feature_names(draw: st.DrawFn, shape: list[int]) -> Doc:
    if not shape:
        return draw(st.sampled_from([
            {"kind": "none", "reason": "a single scalar value"},
            {"kind": "list", "values": []},
        ]))
    last = shape[-1]
    kind = draw(st.sampled_from(["list", "pattern", "sequence"]))
    if kind == "list":
        return {"kind": "list", "values": draw(st.lists(TEXT, min_size=last, max_size=last))}
    if kind == "pattern":
        return {
            "kind": "pattern",
            "template": draw(NAME) + "{i}",
            "start": draw(st.integers(-10, 10)),
            "count": last,
            "sample": draw(st.lists(TEXT, max_size=5)),
        }
    names: Doc = {"kind": "sequence", "reason": draw(NONBLANK)}
    if draw(st.booleans()):
        names["interval"] = draw(st.one_of(st.integers(1, 100), st.floats(0.001, 1e6)))
    if draw(st.booleans()):
        names["unit"] = draw(st.sampled_from(["seconds", "ms", "tokens"]))
    if draw(st.booleans()):
        names["start_value"] = draw(st.one_of(st.integers(-5, 5), st.just("2025-01-01T00:00:00Z")))
    return names


@st.composite
def tensor_array(draw: st.DrawFn) -> Doc:
    shape = draw(st.lists(st.integers(0, 12), max_size=4))
    return {"role": draw(ROLE), "shape": shape, "dtype": draw(DTYPE), "feature_names": draw(feature_names(shape))}


@st.composite
def schema_for(draw: st.DrawFn, fmt: str) -> Doc:
    if fmt in ("npy", "npz"):
        count = 1 if fmt == "npy" else draw(st.integers(1, 4))
        names = draw(st.lists(NAME, min_size=count, max_size=count, unique=True))
        arrays = {name: draw(tensor_array()) for name in names}
        return {"kind": "tensor", "arrays": arrays, "primary_array": draw(st.sampled_from(names))}
    if fmt == "csv":
        columns = draw(st.lists(NAME, max_size=6, unique=True))
        return {
            "kind": "tabular",
            "row_count": draw(st.integers(0, 10**9)),
            "columns": columns,
            "dtypes": {c: draw(DTYPE) for c in columns},
        }
    return {"kind": "file", "content_type": draw(st.sampled_from(["application/json", "text/plain", "image/png"]))}


@st.composite
def valid_docs(draw: st.DrawFn, formats: tuple[str, ...] = FORMATS) -> Doc:
    fmt = draw(st.sampled_from(formats))
    source: Doc = {
        "format": fmt,
        "size_bytes": draw(st.one_of(st.none(), st.integers(1, 10**15))),
        "created_at": draw(STAMP),
    }
    if fmt == "csv":
        source["format_params"] = {"delimiter": draw(st.sampled_from([",", ";", "|", "\t", ":"]))}
    description = draw(st.text(min_size=20, max_size=200).filter(lambda s: len(s.strip()) >= 20))
    return {"schema_version": 1, "description": description, "source": source, "schema": draw(schema_for(fmt))}


@given(valid_docs())
def test_valid_documents_are_accepted_unchanged(doc: Doc) -> None:
    before = copy.deepcopy(doc)
    model = validate_source_metadata(doc)
    assert model.to_dict() == doc
    assert doc == before
    assert metadata_status(doc) == "ok"


@given(st.lists(st.text(max_size=300), max_size=8, unique=True), st.sampled_from([",", ";", "|", "\t", ":"]))
def test_any_column_names_are_accepted(columns: list[str], delimiter: str) -> None:
    doc = seed_doc("csv", {"kind": "tabular", "row_count": 3, "columns": columns,
                           "dtypes": dict.fromkeys(columns, "int64")})
    doc["source"]["format_params"]["delimiter"] = delimiter
    long = [f"schema.columns[{i}]" for i, c in enumerate(columns) if len(c) > 256]
    if long:
        assert fields(errors_of(doc)) == long
    else:
        validate_source_metadata(doc)


# --------------------------------------------------------------------------- mutations
# Each mutation breaks one rule with one of its bad values and names the field paths that must be
# reported (and no others). Every (mutation, bad value) pair is its own test case.

Draw = Callable[..., Any]  # DataObject.draw
Mutation = Callable[[Doc, Draw, Any], set[str]]


class When:
    """Precondition of a mutation: the document's format, then anything else about it."""

    def __init__(self, formats: tuple[str, ...] = FORMATS, test: Callable[[Doc], bool] = lambda doc: True):
        self.formats = formats
        self.test = test

    def __call__(self, doc: Doc) -> bool:
        return doc["source"]["format"] in self.formats and self.test(doc)


MUTATIONS: dict[str, tuple[str, When, list[Any], Mutation]] = {}


def mutation(group: str, when: When | None = None, values: Iterable[Any] = (None,)) -> Callable[[Mutation], Mutation]:
    def register(fn: Mutation) -> Mutation:
        MUTATIONS[fn.__name__] = (group, when or When(), list(values), fn)
        return fn
    return register


TENSOR = When(("npy", "npz"))
TABULAR = When(("csv",))
WITH_COLUMNS = When(("csv",), lambda doc: bool(doc["schema"]["columns"]))


def has_array(test: Callable[[Doc], bool]) -> When:
    return When(("npy", "npz"), lambda doc: any(test(a) for a in doc["schema"]["arrays"].values()))


def some_array(doc: Doc, draw: Draw, test: Callable[[Doc], bool] = lambda a: True) -> tuple[Doc, str]:
    name = draw(st.sampled_from(sorted(n for n, a in doc["schema"]["arrays"].items() if test(a))))
    return doc["schema"]["arrays"][name], f"schema.arrays.{name}"


def fn_kind(*kinds: str) -> Callable[[Doc], bool]:
    return lambda a: a["feature_names"]["kind"] in kinds


def non_scalar(a: Doc) -> bool:
    return len(a["shape"]) > 0


def scalar(a: Doc) -> bool:
    return a["shape"] == []


@mutation("version", values=[0, 2, True, False, "1", 1.0, None, [1], "missing"])
def bad_version(doc: Doc, draw: Draw, value: Any) -> set[str]:
    if value == "missing":
        del doc["schema_version"]
    else:
        doc["schema_version"] = value
    return {"schema_version"}


@mutation("extra", values=["extra", "descripton", "Schema", "tags"])
def unknown_top_key(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc[value] = "x"
    return {value}


@mutation("description", values=["x" * 19, "   " + "y" * 19 + "\n\t ", "", "z" * 4001, 5, None, ["a" * 30], "missing"])
def bad_description(doc: Doc, draw: Draw, value: Any) -> set[str]:
    if value == "missing":
        del doc["description"]
    else:
        doc["description"] = value
    return {"description"}


@mutation("format", values=["directory", "parquet", "NPY", "", 3, None, "json"])
def bad_format(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["source"]["format"] = value
    return {"source.format"}


@mutation("size", values=[0, -1, True, False, 1.5, "100", 10**15 + 1, float("nan"), [1]])
def bad_size(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["source"]["size_bytes"] = value
    return {"source.size_bytes"}


@mutation("created", values=["2025-12-24T12:00:00", "2025-12-24T12:00:00+00:00", "yesterday Z",
                             "2025-13-01T00:00:00Z", "Z", "2025-12-24Z", 1735041600, None, ""])
def bad_created_at(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["source"]["created_at"] = value
    return {"source.created_at"}


@mutation("source", values=["format", "size_bytes", "created_at"])
def missing_source_key(doc: Doc, draw: Draw, value: Any) -> set[str]:
    del doc["source"][value]
    return {f"source.{value}"}


@mutation("source", values=["sizeBytes", "encoding", "path"])
def unknown_source_key(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["source"][value] = 1
    return {f"source.{value}"}


@mutation("source", values=["npy", None, [], 3])
def source_not_object(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["source"] = value
    return {"source"}


@mutation("source", When(("csv",)))
def csv_without_params(doc: Doc, draw: Draw, value: Any) -> set[str]:
    del doc["source"]["format_params"]
    return {"source.format_params"}


@mutation("source", When(("csv",)), values=[",,", "", "x", None, 44, "\n", " ", ", ", "missing"])
def bad_delimiter(doc: Doc, draw: Draw, value: Any) -> set[str]:
    if value == "missing":
        del doc["source"]["format_params"]["delimiter"]
    else:
        doc["source"]["format_params"]["delimiter"] = value
    return {"source.format_params.delimiter"}


@mutation("source", When(("csv",)), values=["extra key", ",", None, [","]])
def bad_format_params(doc: Doc, draw: Draw, value: Any) -> set[str]:
    if value == "extra key":
        doc["source"]["format_params"]["quote"] = '"'
        return {"source.format_params.quote"}
    doc["source"]["format_params"] = value
    return {"source.format_params"}


@mutation("source", When(("npy", "npz", "file")))
def params_without_csv(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["source"]["format_params"] = {"delimiter": ","}
    return {"source.format_params"}


@mutation("schema", values=["matrix", "Tensor", "tabluar", 3, None, "", "missing"])
def bad_kind(doc: Doc, draw: Draw, value: Any) -> set[str]:
    if value == "missing":
        del doc["schema"]["kind"]
    else:
        doc["schema"]["kind"] = value
    return {"schema.kind"}


@mutation("schema", values=["shape", "notes", "primary"])
def unknown_schema_key(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"][value] = "x"
    return {f"schema.{value}"}


@mutation("schema", values=["tensor", None, [], 1])
def schema_not_object(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"] = value
    return {"schema"}


# tensor ---------------------------------------------------------------------------------------


@mutation("schema", TENSOR, values=["arrays", "primary_array"])
def missing_tensor_key(doc: Doc, draw: Draw, value: Any) -> set[str]:
    del doc["schema"][value]
    return {f"schema.{value}"}


@mutation("schema", TENSOR)
def empty_arrays(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"]["arrays"] = {}
    return {"schema.arrays", "schema.primary_array"}


@mutation("schema", TENSOR, values=[[], "features", None])
def arrays_not_object(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"]["arrays"] = value
    return {"schema.arrays"}


@mutation("schema", When(("npy",)))
def npy_with_two_arrays(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"]["arrays"]["SECOND"] = copy.deepcopy(next(iter(doc["schema"]["arrays"].values())))
    return {"schema.arrays"}


@mutation("schema", When(("npz",)), values=["", "a" * 257])
def bad_array_name(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"]["arrays"][value] = copy.deepcopy(next(iter(doc["schema"]["arrays"].values())))
    return {'schema.arrays[""]' if value == "" else f"schema.arrays.{value}"}


@mutation("schema", When(("npz",)), values=[5, "features", None, []])
def array_not_object(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"]["arrays"]["EXTRA"] = value
    return {"schema.arrays.EXTRA"}


@mutation("schema", TENSOR, values=["NOT-AN-ARRAY", 5, None, ""])
def bad_primary(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"]["primary_array"] = value
    return {"schema.primary_array"}


@mutation("schema", TENSOR, values=["feature", "", None, 1, "target"])
def bad_role(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw)
    array["role"] = value
    return {f"{path}.role"}


@mutation("schema", TENSOR, values=["", "  ", None, 32])
def bad_dtype(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw)
    array["dtype"] = value
    return {f"{path}.dtype"}


@mutation("schema", TENSOR, values=["role", "shape", "dtype", "feature_names", "names", "Shape"])
def array_key_missing_or_unknown(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw)
    if value in array:
        del array[value]
    else:
        array[value] = []
    return {f"{path}.{value}"}


@mutation("schema", TENSOR, values=["1000x768", None, 3, {"0": 3}, [1] * 33])
def bad_shape(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw)
    array["shape"] = value
    return {f"{path}.shape"}


@mutation("schema", has_array(non_scalar), values=[None, -1, True, 2.0, "3"])
def bad_dimension(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw, non_scalar)
    i = draw(st.integers(0, len(array["shape"]) - 1))
    array["shape"][i] = value
    return {f"{path}.shape[{i}]"}


@mutation("schema", has_array(lambda a: non_scalar(a) and fn_kind("list", "pattern")(a)), values=[1, 3])
def last_dim_disagrees(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw, lambda a: non_scalar(a) and fn_kind("list", "pattern")(a))
    array["shape"][-1] += value
    leaf = "values" if array["feature_names"]["kind"] == "list" else "count"
    return {f"{path}.feature_names.{leaf}"}


@mutation("schema", TENSOR, values=[["f1"], "f1", None])
def feature_names_not_object(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw)
    array["feature_names"] = value
    return {f"{path}.feature_names"}


@mutation("schema", TENSOR, values=["names", "lists", None, 1, "missing"])
def bad_feature_names_kind(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw)
    if value == "missing":
        del array["feature_names"]["kind"]
    else:
        array["feature_names"]["kind"] = value
    return {f"{path}.feature_names.kind"}


@mutation("schema", has_array(lambda a: fn_kind("list")(a) and bool(a["feature_names"]["values"])),
          values=[5, None, "n" * 1025, ["f"]])
def bad_name_in_list(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw, lambda a: fn_kind("list")(a) and bool(a["feature_names"]["values"]))
    values = array["feature_names"]["values"]
    i = draw(st.integers(0, len(values) - 1))
    values[i] = value
    return {f"{path}.feature_names.values[{i}]"}


@mutation("schema", has_array(fn_kind("list")), values=["extra key", "f1,f2", None, "missing"])
def bad_name_list(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw, fn_kind("list"))
    names = array["feature_names"]
    if value == "extra key":
        names["sample"] = []
        return {f"{path}.feature_names.sample"}
    if value == "missing":
        del names["values"]
    else:
        names["values"] = value
    return {f"{path}.feature_names.values"}


PATTERN_BREAKS = [
    ("template", "token_", ""), ("template", "t" * 255 + "{i}", ""), ("template", 5, ""),
    ("template", "token_{}", ""), ("start", True, ""), ("start", 1.0, ""), ("start", None, ""),
    ("count", -1, ""), ("count", True, ""), ("count", "3", ""), ("sample", "token_1", ""),
    ("sample", ["x"] * 101, ""), ("sample", [3], "[0]"), ("sample", ["s" * 1025], "[0]"),
    ("template", "missing", ""), ("start", "missing", ""), ("count", "missing", ""), ("sample", "missing", ""),
    ("prefix", "x_", ""),
]


@mutation("schema", has_array(fn_kind("pattern")), values=PATTERN_BREAKS)
def bad_pattern(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw, fn_kind("pattern"))
    key, bad, suffix = value
    if bad == "missing":
        del array["feature_names"][key]
    else:
        array["feature_names"][key] = bad
    return {f"{path}.feature_names.{key}{suffix}"}


@mutation("schema", has_array(fn_kind("none", "sequence")), values=["", "   ", "r" * 4001, None, 7, "missing"])
def bad_reason(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw, fn_kind("none", "sequence"))
    if value == "missing":
        del array["feature_names"]["reason"]
    else:
        array["feature_names"]["reason"] = value
    return {f"{path}.feature_names.reason"}


@mutation("schema", has_array(fn_kind("sequence")), values=[
    ("interval", 0), ("interval", -1.5), ("interval", True), ("interval", "1s"), ("interval", float("inf")),
    ("unit", ""), ("unit", 3), ("start_value", [1]), ("start_value", True), ("step", 1),
])
def bad_sequence_extra(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw, fn_kind("sequence"))
    key, bad = value
    array["feature_names"][key] = bad
    return {f"{path}.feature_names.{key}"}


@mutation("schema", has_array(non_scalar))
def none_on_non_scalar(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw, non_scalar)
    array["feature_names"] = {"kind": "none", "reason": "no names"}
    return {f"{path}.feature_names.kind"}


@mutation("schema", has_array(scalar), values=["sequence", "list", "pattern"])
def names_on_scalar(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw, scalar)
    if value == "sequence":
        array["feature_names"] = {"kind": "sequence", "reason": "time steps"}
        return {f"{path}.feature_names.kind"}
    if value == "list":
        array["feature_names"] = {"kind": "list", "values": ["x"]}
        return {f"{path}.feature_names.values"}
    array["feature_names"] = {"kind": "pattern", "template": "x{i}", "start": 0, "count": 2, "sample": []}
    return {f"{path}.feature_names.count"}


@mutation("schema", has_array(fn_kind("none")))
def none_extra_key(doc: Doc, draw: Draw, value: Any) -> set[str]:
    array, path = some_array(doc, draw, fn_kind("none"))
    array["feature_names"]["values"] = []
    return {f"{path}.feature_names.values"}


# tabular --------------------------------------------------------------------------------------


@mutation("schema", TABULAR, values=[-1, True, 1.5, "10", None])
def bad_row_count(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"]["row_count"] = value
    return {"schema.row_count"}


@mutation("schema", TABULAR, values=["row_count", "columns", "dtypes"])
def tabular_key_missing(doc: Doc, draw: Draw, value: Any) -> set[str]:
    del doc["schema"][value]
    return {f"schema.{value}"}


@mutation("schema", TABULAR, values=["a,b", None, {"a": 1}])
def columns_not_list(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"]["columns"] = value
    return {"schema.columns"}


@mutation("schema", WITH_COLUMNS)
def duplicate_column(doc: Doc, draw: Draw, value: Any) -> set[str]:
    columns = doc["schema"]["columns"]
    columns.append(draw(st.sampled_from(columns)))
    return {f"schema.columns[{len(columns) - 1}]"}


@mutation("schema", TABULAR, values=[5, None, "C" * 257])
def bad_column(doc: Doc, draw: Draw, value: Any) -> set[str]:
    columns = doc["schema"]["columns"]
    columns.append(value)
    if isinstance(value, str):
        doc["schema"]["dtypes"][value] = "int64"
    return {f"schema.columns[{len(columns) - 1}]"}


@mutation("schema", TABULAR, values=["column only", "dtype only"])
def columns_and_dtypes_disagree(doc: Doc, draw: Draw, value: Any) -> set[str]:
    if value == "column only":
        doc["schema"]["columns"].append("NEWCOL")
    else:
        doc["schema"]["dtypes"]["NEWCOL"] = "int64"
    return {"schema.dtypes.NEWCOL"}


@mutation("schema", WITH_COLUMNS, values=["", " ", None, 3])
def bad_dtype_value(doc: Doc, draw: Draw, value: Any) -> set[str]:
    column = draw(st.sampled_from(doc["schema"]["columns"]))
    doc["schema"]["dtypes"][column] = value
    return {f"schema.dtypes.{column}"}


@mutation("schema", TABULAR, values=[["int64"], "int64", None])
def dtypes_not_object(doc: Doc, draw: Draw, value: Any) -> set[str]:
    doc["schema"]["dtypes"] = value
    return {"schema.dtypes"}


# file -----------------------------------------------------------------------------------------


@mutation("schema", When(("file",)), values=["", "  ", None, 3, "x" * 257, "missing", "extra key"])
def bad_content_type(doc: Doc, draw: Draw, value: Any) -> set[str]:
    if value == "missing":
        del doc["schema"]["content_type"]
        return {"schema.content_type"}
    if value == "extra key":
        doc["schema"]["encoding"] = "utf-8"
        return {"schema.encoding"}
    doc["schema"]["content_type"] = value
    return {"schema.content_type"}


CASES = [(name, i) for name, (_, _, values, _) in sorted(MUTATIONS.items()) for i in range(len(values))]


@pytest.mark.parametrize(("name", "index"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
@settings(max_examples=6, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_one_mutation_reports_exactly_its_field(name: str, index: int, data: st.DataObject) -> None:
    _, when, values, mutate = MUTATIONS[name]
    doc = data.draw(valid_docs(when.formats).filter(when), label="document")
    expected = mutate(doc, data.draw, values[index])
    err = errors_of(doc)
    assert set(fields(err)) == expected, err.message
    assert len(fields(err)) == len(expected), err.message
    for path in expected:
        assert f"{path}: " in err.message


GROUPS = ("version", "extra", "description", "format", "size", "created", "schema")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(valid_docs(), st.data())
def test_several_mutations_are_all_reported(doc: Doc, data: st.DataObject) -> None:
    # A broken format changes which schema rules apply, so those two are never combined.
    groups = data.draw(st.lists(st.sampled_from(GROUPS), min_size=2, max_size=len(GROUPS), unique=True)
                       .filter(lambda g: not {"format", "schema"} <= set(g)))
    chosen = []
    for group in groups:
        names = sorted(n for n, (g, when, _, _) in MUTATIONS.items() if g == group and when(doc))
        name = data.draw(st.sampled_from(names))
        chosen.append((name, data.draw(st.sampled_from(MUTATIONS[name][2]))))
    expected: set[str] = set()
    for name, value in chosen:
        expected |= MUTATIONS[name][3](doc, data.draw, value)
    err = errors_of(doc)
    assert set(fields(err)) == expected
    assert err.message.startswith(f"{len(expected)} validation errors: ")


# --------------------------------------------------------------------------- specific rules


def test_directory_is_rejected_by_name() -> None:
    doc = seed_doc("file", SEED_FILE)
    doc["source"]["format"] = "directory"
    err = errors_of(doc)
    assert fields(err) == ["source.format"]
    assert "Directory sources are rejected" in err.message


def test_unknown_format_suggests_spelling() -> None:
    doc = seed_doc("npz", expanded_tensor())
    doc["source"]["format"] = "nzp"
    assert 'Did you mean "npz"?' in errors_of(doc).message


def test_kind_must_fit_format() -> None:
    doc = seed_doc("csv", SEED_FILE)
    err = errors_of(doc)
    assert fields(err) == ["schema.kind"]
    assert 'use "tabular"' in err.message
    doc = seed_doc("file", expanded_tensor())
    assert fields(errors_of(doc)) == ["schema.kind"]


def test_require_size_refuses_null() -> None:
    doc = seed_doc("file", SEED_FILE)
    doc["source"]["size_bytes"] = None
    validate_source_metadata(doc)
    err = errors_of(doc, require_size=True)
    assert fields(err) == ["source.size_bytes"]
    assert "required here" in err.message


@pytest.mark.parametrize("size", [1, 10**15])
def test_size_bounds_are_inclusive(size: int) -> None:
    doc = seed_doc("file", SEED_FILE)
    doc["source"]["size_bytes"] = size
    validate_source_metadata(doc, require_size=True)


def test_tool_arguments_must_match_the_document() -> None:
    doc = seed_doc("npy", expanded_tensor())
    err = errors_of(doc, expect_description="Something else entirely, twenty+ chars", expect_format="npz",
                    expect_size=999)
    assert fields(err) == ["description", "source.format", "source.size_bytes"]
    assert "description argument" in err.message and "format argument" in err.message
    assert fields(errors_of(doc, expect_size=True)) == ["source.size_bytes"]
    doc["source"]["size_bytes"] = None
    assert fields(errors_of(doc, expect_size=123456)) == ["source.size_bytes"]
    # Surrounding whitespace in the argument is not a disagreement.
    validate_source_metadata(doc, expect_description=f"  {doc['description']}\n", expect_format="npy")


@pytest.mark.parametrize("value", [None, "text", 3, ["a"], True])
def test_metadata_must_be_an_object(value: object) -> None:
    err = errors_of(value)
    assert fields(err) == ["metadata"]
    assert ("required" in err.message) if value is None else ("must be a JSON object" in err.message)


def test_unknown_key_suggests_the_right_one() -> None:
    doc = seed_doc("file", SEED_FILE)
    doc["schema"]["content-type"] = doc["schema"].pop("content_type")
    err = errors_of(doc)
    assert set(fields(err)) == {"schema.content_type", "schema.content-type"}
    assert 'Did you mean "content_type"?' in err.message


def test_document_too_large() -> None:
    doc = seed_doc("file", SEED_FILE)
    doc["description"] = "d" * 3000
    doc["schema"] = {"kind": "file", "content_type": "x" * 200, "blob": "b" * 1_000_000}
    err = errors_of(doc)
    assert set(fields(err)) == {"metadata", "schema.blob"}
    assert re.search(r"metadata: is 1,00\d,\d{3} bytes as JSON; the maximum is 1,000,000", err.message)


def test_too_many_nodes() -> None:
    doc = seed_doc("npy", seed_tensor({"kind": "list", "values": ["f"] * 100_001}, [2, 100_001]))
    err = errors_of(doc)
    assert fields(err) == ["metadata"]
    assert "more than 100,000 values" in err.message and "pattern" in err.message


def test_node_limit_is_exact() -> None:
    # The document has 19 values besides the names (objects, arrays and scalars all count).
    names = 100_000 - 19
    doc = seed_doc("npy", seed_tensor({"kind": "list", "values": ["f"] * names}, [names]))
    validate_source_metadata(doc)
    doc = seed_doc("npy", seed_tensor({"kind": "list", "values": ["f"] * (names + 1)}, [names + 1]))
    assert fields(errors_of(doc)) == ["metadata"]


def test_nesting_limit() -> None:
    deep: Any = "leaf"
    for _ in range(19):
        deep = [deep]
    doc = seed_doc("file", SEED_FILE)
    doc["extra"] = deep  # depth: document 1, 19 lists → 20 levels
    assert fields(errors_of(doc)) == ["extra"]
    doc["extra"] = [deep]
    err = errors_of(doc)
    assert set(fields(err)) == {"extra", "metadata"}
    assert "nested more than 20 levels" in err.message


def test_self_referencing_document_terminates() -> None:
    doc = seed_doc("file", SEED_FILE)
    loop: list[Any] = []
    loop.append(loop)
    doc["schema"]["content_type"] = loop
    with pytest.raises(InvalidInput) as info:
        validate_source_metadata(doc)
    assert set(fields(info.value)) == {"metadata", "schema.content_type"}


def test_non_json_values_are_named() -> None:
    doc = seed_doc("npz", expanded_tensor())
    doc["schema"]["arrays"]["features"]["shape"] = (1000, 768)
    doc["schema"]["arrays"]["features"]["feature_names"]["values"][5] = float("nan")
    err = errors_of(doc)
    assert set(fields(err)) == {"schema.arrays.features.shape", "schema.arrays.features.feature_names.values[5]"}
    assert "tuple is not a JSON value" in err.message and "NaN" in err.message


def test_lone_surrogate_is_rejected() -> None:
    doc = seed_doc("file", SEED_FILE)
    doc["description"] = "a description with a lone \ud800 surrogate"
    assert "surrogate" in errors_of(doc).message


def test_array_names_with_dots_are_quoted_in_paths() -> None:
    doc = seed_doc("npz", expanded_tensor())
    doc["schema"]["arrays"]["x.y"] = {"role": "labels", "shape": [3], "dtype": "", "feature_names": SEED_NONE}
    err = errors_of(doc)
    assert fields(err) == ['schema.arrays["x.y"].dtype', 'schema.arrays["x.y"].feature_names.kind']


def test_too_many_arrays() -> None:
    array = {"role": "index", "shape": [], "dtype": "int64", "feature_names": SEED_NONE}
    schema = {"kind": "tensor", "arrays": {f"a{i}": array for i in range(1001)}, "primary_array": "a0"}
    err = errors_of(seed_doc("npz", schema))
    assert fields(err) == ["schema.arrays"]
    assert "1001 arrays; the maximum is 1000" in err.message


def test_too_many_columns() -> None:
    columns = [f"c{i}" for i in range(100_001)]
    schema = {"kind": "tabular", "row_count": 1, "columns": columns, "dtypes": dict.fromkeys(columns, "i8")}
    doc = seed_doc("csv", schema)
    err = errors_of(doc)
    assert "schema.columns" in fields(err)


def test_many_errors_are_capped_but_counted() -> None:
    names = {"kind": "list", "values": list(range(5000))}
    err = errors_of(seed_doc("npy", seed_tensor(names, [5000])))
    assert err.details["error_count"] == 5000
    assert len(err.details["errors"]) == MAX_LISTED
    assert err.message.startswith("5000 validation errors: ")
    assert "... and 4980 more (see details.errors)" in err.message


def test_fix_shows_the_shape_for_the_format() -> None:
    doc = seed_doc("csv", SEED_TABULAR)
    doc["description"] = "short"
    fix = errors_of(doc).fix or ""
    assert '"format_params": {"delimiter": ","}' in fix and '"kind": "tabular"' in fix
    assert '"kind": "tensor"' not in fix


def test_sequence_nulls_mean_not_given() -> None:
    names = {"kind": "sequence", "reason": "hourly readings", "interval": None, "unit": None, "start_value": None}
    doc = seed_doc("npy", seed_tensor(names, [24, 7]))
    assert validate_source_metadata(doc).to_dict() == doc


# --------------------------------------------------------------------------- status


def test_metadata_status() -> None:
    ok = seed_doc("file", SEED_FILE)
    assert metadata_status(ok) == "ok"
    assert metadata_status(None) == "missing"
    future = {**ok, "schema_version": 2, "whatever": {"new": "layout"}}
    assert metadata_status(future) == "future"
    assert metadata_status({**ok, "schema_version": True}) == "invalid"
    assert metadata_status({**ok, "description": "short"}) == "invalid"
    assert metadata_status("text") == "invalid"
    assert metadata_status({}) == "invalid"


# --------------------------------------------------------------------------- size and hash


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, 3 * (1 << 20) + 7])
def test_infer_size_and_hash(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert infer_size_and_hash(path) == (size, hashlib.sha256(data).hexdigest())


def test_infer_refuses_directories_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="Directory sources are rejected"):
        infer_size_and_hash(tmp_path)
    with pytest.raises(NotFound, match="does not exist"):
        infer_size_and_hash(tmp_path / "nope.npy")
    assert list(tmp_path.iterdir()) == []


def test_seed_docs_are_json() -> None:
    # The documents travel as JSON over MCP; they must survive the trip unchanged and stay valid.
    for doc in SEED_DOCS.values():
        validate_source_metadata(json.loads(json.dumps(doc)))
