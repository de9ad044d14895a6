"""Issue 11 (vectorised FN flags): a column of numbers formatted at once is exactly Python's ``format`` of each."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecisem_core.curation.number_text import format_numbers

SPECS = [".2f", "+.2f", ".0f", ".1f", ".3f", "g", ".3g"]
EDGES = [0.0, -0.0, 0.005, -0.005, 0.015, 0.125, 0.375, 2.5, 3.5, -2.5, 0.994999999, 0.995, 0.9950000001,
         1e-320, -1e-320, 1e9, 9999.995, 123456.785, 1e300, -1e300, float("nan"), float("inf"), float("-inf"),
         0.1 + 0.2, 1 / 3, -2 / 3, 99.999, 9.9949999999]


def _python(v: np.ndarray, spec: str) -> list[str]:
    return [format(float(x), spec) for x in v]


@pytest.mark.parametrize("spec", SPECS)
def test_hand_picked_edges_are_pythons_texts(spec):
    v = np.array(EDGES * 40)  # enough values for the table path
    assert format_numbers(v, spec).tolist() == _python(v, spec)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=40), st.sampled_from(SPECS))
def test_any_floats_are_pythons_texts(values, spec):
    v = np.array(values, dtype=np.float64)
    assert format_numbers(v, spec).tolist() == _python(v, spec)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=1, max_size=300), st.sampled_from([".2f", "+.2f", ".0f", ".1f"]))
def test_small_values_through_the_table_are_pythons_texts(values, spec):
    v = np.array(values * 30, dtype=np.float64)
    assert format_numbers(v, spec).tolist() == _python(v, spec)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-10**4, 10**4), min_size=1, max_size=40), st.sampled_from([".2f", "+.2f", ".0f", ".1f"]))
def test_values_at_and_near_decimal_ties_are_pythons_texts(ints, spec):
    base = np.array(ints, dtype=np.float64) / 1000 + 0.0005  # many exact or near halves of the last digit
    v = np.tile(np.concatenate([base, np.nextafter(base, np.inf), np.nextafter(base, -np.inf)]), 50)
    assert format_numbers(v, spec).tolist() == _python(v, spec)


def test_many_similarities_match_python():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.uniform(-1, 1, 200_000), rng.normal(0, 30, 50_000)])
    for spec in (".2f", "+.2f", ".0f"):
        got = format_numbers(v, spec)
        assert got.dtype == object and all(type(t) is str for t in got[:100])
        assert got.tolist() == _python(v, spec)


def test_empty_and_shapes():
    assert format_numbers(np.array([]), ".2f").tolist() == []
    assert format_numbers([[0.5, 1.25]], ".1f").tolist() == ["0.5", "1.2"]
