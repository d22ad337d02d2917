"""Search-space construction, validation, encoding, designs and JSON round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayestune import Categorical, Integer, Real, Space, SpaceError


@pytest.fixture
def mixed() -> Space:
    return Space([Real("lr", 1e-5, 1e-1, log=True), Real("x", -2.0, 3.0),
                  Integer("depth", 2, 6), Integer("width", 8, 512, log=True),
                  Categorical("opt", ["adamw", "ranger", "sgd"])])


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: Real("StringZ:aLund", 3.0, 1.0), r"low=3.0, high=1.0 for 'StringZ:aLund'"),
        (lambda: Real("a", 1.0, 1.0), r"lower bound must be < upper bound"),
        (lambda: Real("lr", 0.0, 1.0, log=True), r"positive lower bound, got low=0.0 for 'lr'"),
        (lambda: Real("lr", -1.0, 1.0, log=True), r"got low=-1.0 for 'lr'"),
        (lambda: Integer("n", 0, 10, log=True), r"got low=0 for 'n'"),
        (lambda: Integer("n", 1.5, 10), r"whole numbers, got low=1.5 for 'n'"),
        (lambda: Real("a", float("nan"), 1.0), r"low must be finite"),
        (lambda: Categorical("opt", ["adam"]), r"at least 2 choices"),
        (lambda: Categorical("opt", ["adam", "adam"]), r"distinct"),
        (lambda: Categorical("opt", "adam"), r"list of values"),
        (lambda: Real("", 0, 1), r"non-empty string"),
        (lambda: Space([Real("a", 0, 1), Real("a", 0, 2)]), r"unique, got 'a' twice"),
        (lambda: Space([]), r"at least one parameter"),
    ],
)
def test_construction_errors_name_parameter_and_value(factory, match):
    with pytest.raises(SpaceError, match=match):
        factory()


def test_space_error_is_a_value_error():
    with pytest.raises(ValueError):
        Real("a", 2, 1)


@pytest.mark.parametrize(
    ("point", "match"),
    [
        ({"lr": 1e-3, "x": 0.0, "depth": 3, "width": 64}, r"missing parameter\(s\) \['opt'\]"),
        ({"lr": 1e-3, "x": 0.0, "depth": 3, "width": 64, "opt": "sgd", "momentum": 0.9},
         r"unknown parameter\(s\) \['momentum'\]"),
        ({"lr": 1.0, "x": 0.0, "depth": 3, "width": 64, "opt": "sgd"},
         r"\[1e-05, 0.1\], got 1.0 for 'lr'"),
        ({"lr": 1e-3, "x": 0.0, "depth": 7, "width": 64, "opt": "sgd"},
         r"\[2, 6\], got 7 for 'depth'"),
        ({"lr": 1e-3, "x": 0.0, "depth": 3.5, "width": 64, "opt": "sgd"},
         r"must be an integer, got 3.5 for 'depth'"),
        ({"lr": 1e-3, "x": 0.0, "depth": 3, "width": 64, "opt": "adam"},
         r"one of \['adamw', 'ranger', 'sgd'\], got 'adam' for 'opt'"),
        ({"lr": 1e-3, "x": float("inf"), "depth": 3, "width": 64, "opt": "sgd"},
         r"finite, got value=inf for 'x'"),
        ({"lr": "big", "x": 0.0, "depth": 3, "width": 64, "opt": "sgd"},
         r"must be a number, got value='big' for 'lr'"),
    ],
)
def test_point_validation_errors(mixed, point, match):
    with pytest.raises(SpaceError, match=match):
        mixed.validate(point)


def test_encoding_is_exact_and_invertible(mixed):
    point = {"lr": 1e-3, "x": 0.5, "depth": 4, "width": 64, "opt": "ranger"}
    u = mixed.to_unit(point)
    assert u.shape == (mixed.n_columns,) == (7,)
    assert u[0] == pytest.approx(0.5, abs=1e-12)  # 1e-3 is the log-midpoint of [1e-5, 1e-1]
    assert u[1] == pytest.approx(0.5, abs=1e-12)
    assert u[2] == pytest.approx(0.5, abs=1e-12)  # 4 is the middle of cells [1.5, 6.5]
    np.testing.assert_array_equal(u[4:], [0.0, 1.0, 0.0])
    back = mixed.from_unit(u)
    assert back["depth"] == 4 and back["width"] == 64 and back["opt"] == "ranger"
    assert back["lr"] == pytest.approx(1e-3, rel=1e-12)
    assert back["x"] == pytest.approx(0.5, abs=1e-12)


def test_from_unit_always_valid(mixed, rng):
    U = rng.uniform(-0.3, 1.3, size=(500, mixed.n_columns))
    for p in mixed.from_unit(U):
        assert mixed.validate(p) == p
        assert isinstance(p["depth"], int) and isinstance(p["width"], int)


def test_snap_is_a_projection(mixed, rng):
    U = rng.uniform(0, 1, size=(50, mixed.n_columns))
    S = mixed.snap_unit(U)
    np.testing.assert_allclose(mixed.snap_unit(S), S, atol=1e-12)
    np.testing.assert_allclose(S, mixed.to_unit(mixed.from_unit(S)), atol=1e-12)


@pytest.mark.parametrize("method", ["sobol", "lhs", "random"])
def test_designs_are_valid_and_reproducible(mixed, method):
    a = mixed.sample(20, np.random.default_rng(3), method)
    b = mixed.sample(20, np.random.default_rng(3), method)
    assert a == b
    assert len(a) == 20
    for p in a:
        mixed.validate(p)


def test_integer_design_covers_every_value_evenly():
    space = Space([Integer("k", 1, 4)])
    values = [p["k"] for p in space.sample(64, np.random.default_rng(0), "sobol")]
    assert sorted(set(values)) == [1, 2, 3, 4]
    assert all(values.count(k) == 16 for k in range(1, 5))


def test_lhs_is_stratified():
    space = Space([Real("a", 0, 1), Real("b", 0, 1)])
    pts = space.sample(10, np.random.default_rng(1), "lhs")
    for name in ("a", "b"):
        cells = sorted(int(p[name] * 10) for p in pts)
        assert cells == list(range(10))


def test_bad_design_requests(mixed):
    with pytest.raises(SpaceError, match=r"got n=0"):
        mixed.sample(0, np.random.default_rng(0))
    with pytest.raises(SpaceError, match=r"got 'grid'"):
        mixed.sample(4, np.random.default_rng(0), "grid")  # type: ignore[arg-type]


def test_json_round_trip(mixed):
    text = mixed.to_json()
    assert json.loads(text)["parameters"][0] == {"type": "real", "name": "lr", "low": 1e-5,
                                                 "high": 0.1, "log": True}
    again = Space.from_json(text)
    assert again == mixed
    assert again.to_json() == text


def test_from_dict_rejects_unknown_type():
    with pytest.raises(SpaceError, match=r"got type='float'"):
        Space.from_dict({"parameters": [{"type": "float", "name": "a", "low": 0, "high": 1}]})


def test_neighbours_step_discrete_parameters_only(mixed):
    u = mixed.to_unit({"lr": 1e-3, "x": 0.5, "depth": 6, "width": 8, "opt": "sgd"})
    points = mixed.from_unit(mixed.neighbours(u))
    changes = sorted((k, p[k]) for p in points for k in p
                     if p[k] != {"lr": 1e-3, "x": 0.5, "depth": 6, "width": 8, "opt": "sgd"}[k]
                     and k not in ("lr", "x"))
    assert changes == [("depth", 5), ("opt", "adamw"), ("opt", "ranger"), ("width", 9)]


def test_unit_to_physical_scale():
    assert Real("a", 0, 10).unit_to_physical_scale(0.5) == pytest.approx(5.0)
    assert Real("b", 1, np.e**2, log=True).unit_to_physical_scale(0.5) == pytest.approx(1.0)
