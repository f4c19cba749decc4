"""Property tests for the metric rules and the contract checks."""

from __future__ import annotations

import json
import math
import string
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stage_sdk import _metric_rules as rules
from stage_sdk.contracts import check_contract
from stage_sdk.metrics import MetricsLogger

NAME_TAIL = string.ascii_letters + string.digits + "_.-/:"
valid_names = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(string.ascii_letters),
    st.text(alphabet=NAME_TAIL, max_size=255),
).filter(lambda n: ".." not in n and "//" not in n)


@given(valid_names)
def test_valid_metric_names_are_accepted_verbatim(name: str) -> None:
    assert rules.check_name(name) == name


@given(st.text(max_size=300))
def test_metric_name_acceptance_matches_the_rule(name: str) -> None:
    expected = (
        1 <= len(name) <= 256
        and name[0] in string.ascii_letters
        and all(c in NAME_TAIL for c in name)
        and ".." not in name
        and "//" not in name
    )
    try:
        rules.check_name(name)
        accepted = True
    except rules.Rejected as exc:
        accepted = False
        assert exc.reason == "invalid_name" and "train/loss" in exc.message
    assert accepted == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_floats_round_trip_exactly(value: float) -> None:
    assert rules.coerce_value(value) == value
    assert json.loads(repr(rules.coerce_value(value))) == value


@given(st.one_of(st.integers(min_value=-(2**62), max_value=2**62),
                 st.integers(min_value=-(2**62), max_value=2**62).map(np.int64),
                 st.floats(width=32, allow_nan=False, allow_infinity=False).map(np.float32)))
def test_ints_and_numpy_scalars_are_numbers(value: object) -> None:
    assert rules.coerce_value(value) == float(value)  # type: ignore[arg-type]


@given(st.one_of(st.booleans(), st.booleans().map(np.bool_), st.text(), st.none(), st.lists(st.floats()),
                 st.dictionaries(st.text(), st.integers()), st.complex_numbers()))
def test_non_numbers_and_bools_are_rejected(value: object) -> None:
    with pytest.raises(rules.Rejected) as info:
        rules.coerce_value(value)
    assert info.value.reason == "invalid_value"


@given(st.one_of(st.integers(min_value=0, max_value=2**40), st.integers(min_value=0, max_value=2**40).map(np.int64)))
def test_non_negative_int_steps(step: int) -> None:
    assert rules.check_step(step) == int(step)


@given(st.one_of(st.integers(max_value=-1), st.floats(), st.booleans(), st.text()))
def test_bad_steps(step: object) -> None:
    with pytest.raises(rules.Rejected):
        rules.check_step(step)


@given(st.floats(min_value=-9.9 * 365 * 86400, max_value=86_000))
def test_unix_timestamps_in_range_become_iso_utc(offset: float) -> None:
    now = time.time()
    iso = rules.check_timestamp(now + offset, now=now)
    parsed = datetime.fromisoformat(iso)
    assert iso.endswith("Z") and abs(parsed.timestamp() - (now + offset)) < 1e-5


@given(st.one_of(st.floats(min_value=86_401, max_value=1e9), st.floats(min_value=-1e12, max_value=-10.01 * 365.25 * 86400)))
def test_timestamps_out_of_range_are_rejected(offset: float) -> None:
    now = time.time()
    with pytest.raises(rules.Rejected) as info:
        rules.check_timestamp(now + offset, now=now)
    assert info.value.reason == "invalid_timestamp"


anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                     st.binary(max_size=5), st.lists(st.integers(), max_size=3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.one_of(valid_names, anything), anything, st.one_of(st.none(), anything)), max_size=20))
def test_logger_never_raises_and_writes_only_valid_records(calls: list[tuple[object, object, object]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lg = MetricsLogger(Path(tmp))
        accepted = 0
        modes: dict[object, bool] = {}
        for name, value, step in calls:
            lg.log_metric(name, value, step=step)  # type: ignore[arg-type]
            try:
                rules.check_name(name)
                v = rules.coerce_value(value)
                s = rules.check_step(step)
                ok = math.isfinite(v) and modes.setdefault(name, s is not None) == (s is not None)
            except rules.Rejected:
                ok = False
            accepted += ok
        lg.close()
        path = Path(tmp) / ".goldfish" / "metrics.jsonl"
        records = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        metrics = [r for r in records if r["type"] == "metric"]
        assert len(metrics) == accepted
        for r in metrics:
            rules.check_name(r["name"])
            assert math.isfinite(r["value"]) and (r["step"] is None or r["step"] >= 0)
        lost = sum(r["count"] for r in records if r["type"] == "lost")
        assert lost == len(calls) - accepted == sum(lg.lost_counts().values())


# ------------------------------------------------------------------------------------------ contracts

shapes = st.lists(st.integers(min_value=0, max_value=4), min_size=0, max_size=4)


@given(shapes, st.data())
def test_wildcards_match_any_size(shape: list[int], data: st.DataObject) -> None:
    spec = [data.draw(st.sampled_from([d, None, -1])) for d in shape]
    arr = np.zeros(shape, np.float32)
    schema = {"kind": "tensor", "shape": spec, "dtype": "float32", "rank": len(shape)}
    assert check_contract(arr, schema, signal="x") == []


@given(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4), st.data())
def test_a_fixed_dimension_that_differs_is_reported(shape: list[int], data: st.DataObject) -> None:
    i = data.draw(st.integers(min_value=0, max_value=len(shape) - 1))
    spec: list[int | None] = [data.draw(st.sampled_from([d, None, -1])) for d in shape]
    spec[i] = shape[i] + data.draw(st.integers(min_value=1, max_value=3))
    found = check_contract(np.zeros(shape), {"kind": "tensor", "shape": spec}, signal="x")
    assert [f.check for f in found] == ["shape"] and f"got {shape}" in found[0].message


@given(shapes, st.integers(min_value=0, max_value=5))
def test_rank_must_equal_the_number_of_dims(shape: list[int], rank: int) -> None:
    found = check_contract(np.zeros(shape), {"kind": "tensor", "shape": [None] * rank}, signal="x")
    assert (found == []) == (rank == len(shape))


@given(st.sampled_from(["float32", "float64", "int8", "int64", "uint8", "bool"]),
       st.sampled_from(["float32", "float64", "int8", "int64", "uint8", "bool"]))
def test_dtype_check(declared: str, actual: str) -> None:
    found = check_contract(np.zeros(2, dtype=actual), {"kind": "tensor", "dtype": declared}, signal="x")
    assert (found == []) == (declared == actual)
