"""Search spaces: the only code in bayestune that knows physical units.

A :class:`Space` is an ordered list of parameters (:class:`Real`, :class:`Integer`,
:class:`Categorical`). It maps points (``dict`` of name -> value) to and from the *encoded
unit cube* in which the surrogate and the acquisition optimiser work:

* ``Real`` -> one column in [0, 1] (linear or logarithmic in the physical value);
* ``Integer`` -> one column in [0, 1]; the integer ``k`` owns the cell ``[k - 0.5, k + 0.5]``
  so that uniform samples give every integer the same probability;
* ``Categorical`` with ``k`` choices -> ``k`` one-hot columns.

``from_unit`` always returns valid values: integers are rounded, categoricals take the
arg-max of their one-hot block, everything is clipped into bounds.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from scipy.stats import qmc

from .exceptions import SpaceError

__all__ = ["Real", "Integer", "Categorical", "Space", "Dimension"]


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise SpaceError(f"parameter name must be a non-empty string, got {name!r}")
    return name


def _check_finite(value: object, what: str, name: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SpaceError(f"{what} must be a number, got {what}={value!r} for {name!r}") from None
    if not math.isfinite(number):
        raise SpaceError(f"{what} must be finite, got {what}={value!r} for {name!r}")
    return number


class Dimension(ABC):
    """One parameter of a :class:`Space`."""

    name: str

    @property
    @abstractmethod
    def n_columns(self) -> int:
        """Number of columns this parameter takes in the encoded unit cube."""

    @property
    def is_discrete(self) -> bool:
        """Whether only isolated values are valid (integers and categories)."""
        return False

    @abstractmethod
    def validate(self, value: Any) -> Any:
        """Return ``value`` in canonical form, or raise :class:`SpaceError`."""

    @abstractmethod
    def encode(self, value: Any) -> np.ndarray:
        """Map a valid value to its unit-cube columns, shape ``(n_columns,)``."""

    @abstractmethod
    def decode(self, columns: np.ndarray) -> Any:
        """Map unit-cube columns (any values) to the nearest valid value."""

    @abstractmethod
    def from_uniform(self, u: float) -> Any:
        """Map one uniform number in [0, 1) to a value (used by space-filling designs)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible description."""

    def snap(self, columns: np.ndarray) -> np.ndarray:
        """Project unit-cube columns onto the encoding of the nearest valid value."""
        return self.encode(self.decode(columns))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dimension) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"{type(self).__name__}({args})"


class Interval(Dimension):
    """Shared logic of :class:`Real` and :class:`Integer`: an interval, maybe log-scaled."""

    def __init__(self, name: str, low: float, high: float, log: bool = False) -> None:
        self.name = _check_name(name)
        if not isinstance(log, (bool, np.bool_)):
            raise SpaceError(f"log must be True or False, got log={log!r} for {name!r}")
        low_f = _check_finite(low, "low", self.name)
        high_f = _check_finite(high, "high", self.name)
        if not low_f < high_f:
            raise SpaceError(
                f"lower bound must be < upper bound, got low={low!r}, high={high!r} for {name!r}"
            )
        if log and low_f <= 0:
            raise SpaceError(
                f"a log-scale parameter needs a positive lower bound, got low={low!r} for {name!r}"
            )
        self.log = bool(log)

    @property
    def n_columns(self) -> int:
        return 1

    # The interval that is mapped linearly (or logarithmically) to [0, 1].
    _lo: float
    _hi: float

    def _to_unit(self, x: float) -> float:
        if self.log:
            return (math.log(x) - math.log(self._lo)) / (math.log(self._hi) - math.log(self._lo))
        return (x - self._lo) / (self._hi - self._lo)

    def _from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            return math.exp(math.log(self._lo) + u * (math.log(self._hi) - math.log(self._lo)))
        return self._lo + u * (self._hi - self._lo)

    def unit_to_physical_scale(self, length: float) -> float:
        """Convert a length in unit-cube coordinates to physical units.

        For a log-scale parameter the result is a length in ``ln(value)`` (a relative width).
        """
        if self.log:
            return length * (math.log(self._hi) - math.log(self._lo))
        return length * (self._hi - self._lo)


class Real(Interval):
    """A continuous parameter in ``[low, high]``, optionally on a logarithmic scale.

    Parameters
    ----------
    name : str
        Parameter name, e.g. ``"StringZ:aLund"``.
    low, high : float
        Bounds, ``low < high``; both > 0 when ``log`` is true.
    log : bool
        Whether the surrogate sees ``ln(value)`` instead of ``value``.
    """

    def __init__(self, name: str, low: float, high: float, log: bool = False) -> None:
        super().__init__(name, low, high, log)
        self.low = float(low)
        self.high = float(high)
        self._lo, self._hi = self.low, self.high

    def validate(self, value: Any) -> float:
        if isinstance(value, bool):
            raise SpaceError(f"value must be a real number, got {value!r} for {self.name!r}")
        number = _check_finite(value, "value", self.name)
        if not self.low <= number <= self.high:
            raise SpaceError(
                f"value must lie in [{self.low}, {self.high}], got {value!r} for {self.name!r}"
            )
        return number

    def encode(self, value: Any) -> np.ndarray:
        return np.array([self._to_unit(float(value))])

    def decode(self, columns: np.ndarray) -> float:
        return min(max(self._from_unit(columns[0]), self.low), self.high)

    def snap(self, columns: np.ndarray) -> np.ndarray:
        return np.clip(columns, 0.0, 1.0)

    def from_uniform(self, u: float) -> float:
        return self.decode(np.array([u]))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "real", "name": self.name, "low": self.low, "high": self.high,
                "log": self.log}


class Integer(Interval):
    """An integer parameter in ``[low, high]`` (both included), optionally log-scaled.

    Parameters
    ----------
    name : str
        Parameter name.
    low, high : int
        Inclusive bounds, ``low < high``; ``low >= 1`` when ``log`` is true.
    log : bool
        Whether the surrogate sees ``ln(value)``.
    """

    def __init__(self, name: str, low: int, high: int, log: bool = False) -> None:
        super().__init__(name, low, high, log)
        for what, bound in (("low", low), ("high", high)):
            if isinstance(bound, bool) or float(bound) != int(float(bound)):
                raise SpaceError(
                    f"integer bounds must be whole numbers, got {what}={bound!r} for {name!r}"
                )
        self.low = int(float(low))
        self.high = int(float(high))
        # each integer k owns [k - 0.5, k + 0.5]
        self._lo, self._hi = self.low - 0.5, self.high + 0.5

    @property
    def is_discrete(self) -> bool:
        return True

    def validate(self, value: Any) -> int:
        if isinstance(value, bool):
            raise SpaceError(f"value must be an integer, got {value!r} for {self.name!r}")
        number = _check_finite(value, "value", self.name)
        if number != round(number):
            raise SpaceError(f"value must be an integer, got {value!r} for {self.name!r}")
        if not self.low <= number <= self.high:
            raise SpaceError(
                f"value must lie in [{self.low}, {self.high}], got {value!r} for {self.name!r}"
            )
        return int(round(number))

    def encode(self, value: Any) -> np.ndarray:
        return np.array([self._to_unit(float(value))])

    def decode(self, columns: np.ndarray) -> int:
        x = self._from_unit(columns[0])
        return int(min(max(round(x), self.low), self.high))

    def from_uniform(self, u: float) -> int:
        return self.decode(np.array([u]))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "integer", "name": self.name, "low": self.low, "high": self.high,
                "log": self.log}


class Categorical(Dimension):
    """A parameter taking one of a finite list of choices (strings, numbers or booleans).

    Parameters
    ----------
    name : str
        Parameter name, e.g. ``"optimizer"``.
    choices : sequence
        At least two distinct JSON-compatible values, e.g. ``["adamw", "ranger"]``.
    """

    def __init__(self, name: str, choices: Sequence[Any]) -> None:
        self.name = _check_name(name)
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Iterable):
            raise SpaceError(f"choices must be a list of values, got {choices!r} for {name!r}")
        choice_list = list(choices)
        if len(choice_list) < 2:
            raise SpaceError(
                f"a categorical needs at least 2 choices, got {choice_list!r} for {name!r}"
            )
        for c in choice_list:
            if not isinstance(c, (str, int, float, bool)):
                raise SpaceError(
                    f"choices must be str, int, float or bool, got {c!r} for {name!r}"
                )
        keys = [json.dumps(c) for c in choice_list]
        if len(set(keys)) != len(keys):
            raise SpaceError(f"choices must be distinct, got {choice_list!r} for {name!r}")
        self.choices = tuple(choice_list)
        self._index = dict(zip(keys, range(len(keys))))

    @property
    def n_columns(self) -> int:
        return len(self.choices)

    @property
    def is_discrete(self) -> bool:
        return True

    def index(self, value: Any) -> int:
        """Position of ``value`` in :attr:`choices`; raises :class:`SpaceError` if absent."""
        try:
            return self._index[json.dumps(value)]
        except (TypeError, KeyError):
            raise SpaceError(
                f"value must be one of {list(self.choices)!r}, got {value!r} for {self.name!r}"
            ) from None

    def validate(self, value: Any) -> Any:
        return self.choices[self.index(value)]

    def encode(self, value: Any) -> np.ndarray:
        onehot = np.zeros(len(self.choices))
        onehot[self.index(value)] = 1.0
        return onehot

    def decode(self, columns: np.ndarray) -> Any:
        return self.choices[int(np.argmax(columns))]

    def from_uniform(self, u: float) -> Any:
        k = min(int(u * len(self.choices)), len(self.choices) - 1)
        return self.choices[k]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "categorical", "name": self.name, "choices": list(self.choices)}


_TYPES: dict[str, type[Dimension]] = {"real": Real, "integer": Integer,
                                      "categorical": Categorical}


def _dimension_from_dict(spec: Mapping[str, Any]) -> Dimension:
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in _TYPES:
        raise SpaceError(f"parameter type must be one of {sorted(_TYPES)}, got type={kind!r}")
    try:
        return _TYPES[kind](**spec)
    except TypeError as exc:
        raise SpaceError(f"bad fields for a {kind!r} parameter {spec!r}: {exc}") from None


class Space:
    """An ordered collection of named parameters.

    Parameters
    ----------
    dimensions : sequence of Dimension
        The parameters; names must be unique.

    Examples
    --------
    >>> space = Space([Real("x", -5, 10), Integer("depth", 2, 6), Categorical("opt", ["a", "b"])])
    >>> space.to_unit({"x": 2.5, "depth": 4, "opt": "b"})
    array([0.5, 0.5, 0. , 1. ])
    """

    def __init__(self, dimensions: Sequence[Dimension]) -> None:
        dims = list(dimensions)
        if not dims:
            raise SpaceError("a space needs at least one parameter, got an empty list")
        seen: set[str] = set()
        for d in dims:
            if not isinstance(d, Dimension):
                raise SpaceError(
                    f"space entries must be Real, Integer or Categorical, got {d!r}"
                )
            if d.name in seen:
                raise SpaceError(f"parameter names must be unique, got {d.name!r} twice")
            seen.add(d.name)
        self.dimensions: tuple[Dimension, ...] = tuple(dims)
        slices = []
        start = 0
        for d in dims:
            slices.append(slice(start, start + d.n_columns))
            start += d.n_columns
        self._slices = tuple(slices)
        self.n_columns = start
        self.discrete_columns = np.zeros(start, dtype=bool)
        for d, s in zip(dims, slices):
            self.discrete_columns[s] = d.is_discrete

    # ----------------------------------------------------------------- container protocol
    @property
    def names(self) -> list[str]:
        """Parameter names in order."""
        return [d.name for d in self.dimensions]

    def __len__(self) -> int:
        return len(self.dimensions)

    def __iter__(self) -> Iterator[Dimension]:
        return iter(self.dimensions)

    def __getitem__(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(f"no parameter named {name!r}; the space has {self.names}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        inner = ",\n    ".join(repr(d) for d in self.dimensions)
        return f"Space([\n    {inner},\n])"

    @property
    def is_continuous(self) -> bool:
        """True when every parameter is :class:`Real`."""
        return not self.discrete_columns.any()

    def columns_of(self, name: str) -> slice:
        """Slice of the encoded columns that belong to parameter ``name``."""
        return self._slices[self.names.index(self[name].name)]

    # ----------------------------------------------------------------- validation
    def validate(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """Check a point and return it in canonical form (ordered, canonical types).

        Raises
        ------
        SpaceError
            If a key is missing or unknown, or a value is out of bounds or invalid.
        """
        if not isinstance(point, Mapping):
            raise SpaceError(f"a point must be a dict of parameter values, got {point!r}")
        missing = [n for n in self.names if n not in point]
        if missing:
            raise SpaceError(f"point is missing parameter(s) {missing}, got keys {list(point)}")
        unknown = [k for k in point if k not in self.names]
        if unknown:
            raise SpaceError(
                f"point has unknown parameter(s) {unknown}; the space has {self.names}"
            )
        return {d.name: d.validate(point[d.name]) for d in self.dimensions}

    # ----------------------------------------------------------------- encoding
    def to_unit(self, points: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode point(s) into the unit cube.

        Parameters
        ----------
        points : dict or sequence of dict
            One point or ``n`` points.

        Returns
        -------
        ndarray
            Shape ``(n_columns,)`` for one point, ``(n, n_columns)`` for a sequence.
        """
        if isinstance(points, Mapping):
            p = self.validate(points)
            return np.concatenate([d.encode(p[d.name]) for d in self.dimensions])
        rows = [self.to_unit(p) for p in points]
        return np.array(rows).reshape(len(rows), self.n_columns)

    def from_unit(self, u: np.ndarray) -> dict[str, Any] | list[dict[str, Any]]:
        """Decode unit-cube row(s) to valid point(s) (rounding and clipping as needed).

        Parameters
        ----------
        u : ndarray
            Shape ``(n_columns,)`` or ``(n, n_columns)``.
        """
        arr = np.asarray(u, dtype=float)
        if arr.ndim == 1:
            self._check_columns(arr.shape[0])
            return {d.name: d.decode(arr[s]) for d, s in zip(self.dimensions, self._slices)}
        self._check_columns(arr.shape[-1])
        return [self.from_unit(row) for row in arr]  # type: ignore[misc]

    def snap_unit(self, u: np.ndarray) -> np.ndarray:
        """Project unit-cube rows onto the encodings of valid points, same shape as ``u``."""
        arr = np.atleast_2d(np.asarray(u, dtype=float)).copy()
        self._check_columns(arr.shape[-1])
        for d, s in zip(self.dimensions, self._slices):
            if d.is_discrete:
                arr[:, s] = np.array([d.snap(row) for row in arr[:, s]])
            else:
                arr[:, s] = np.clip(arr[:, s], 0.0, 1.0)
        return arr.reshape(np.shape(u))

    def neighbours(self, u: np.ndarray) -> np.ndarray:
        """Valid encodings one discrete step away from ``u`` (integer +-1, other categories).

        Parameters
        ----------
        u : ndarray, shape (n_columns,)

        Returns
        -------
        ndarray, shape (m, n_columns)
        """
        base = self.snap_unit(np.asarray(u, dtype=float))
        rows = []
        for d, s in zip(self.dimensions, self._slices):
            if isinstance(d, Integer):
                value = d.decode(base[s])
                options: list[Any] = [v for v in (value - 1, value + 1) if d.low <= v <= d.high]
            elif isinstance(d, Categorical):
                current = d.decode(base[s])
                options = [c for c in d.choices if c != current]
            else:
                continue
            for option in options:
                row = base.copy()
                row[s] = d.encode(option)
                rows.append(row)
        return np.array(rows).reshape(len(rows), self.n_columns)

    def _check_columns(self, n: int) -> None:
        if n != self.n_columns:
            raise SpaceError(f"unit-cube points need {self.n_columns} columns, got {n}")

    # ----------------------------------------------------------------- designs
    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        method: Literal["sobol", "lhs", "random"] = "sobol",
    ) -> list[dict[str, Any]]:
        """Draw ``n`` points with a space-filling design.

        Parameters
        ----------
        n : int
            Number of points (> 0).
        rng : numpy.random.Generator
            Source of randomness (the scrambling of Sobol, the permutation of LHS).
        method : {"sobol", "lhs", "random"}
            Scrambled Sobol sequence, Latin hypercube (both ``scipy.stats.qmc``), or iid uniform.
        """
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise SpaceError(f"number of design points must be a positive integer, got n={n!r}")
        uniform = self._uniform(int(n), rng, method)
        return [
            {d.name: d.from_uniform(float(row[i])) for i, d in enumerate(self.dimensions)}
            for row in uniform
        ]

    def _uniform(self, n: int, rng: np.random.Generator, method: str) -> np.ndarray:
        d = len(self.dimensions)
        if method == "sobol":
            sampler: qmc.QMCEngine = qmc.Sobol(d, scramble=True, seed=rng)
            m = max(int(math.ceil(math.log2(n))), 0)
            return sampler.random_base2(m)[:n]
        if method == "lhs":
            sampler = qmc.LatinHypercube(d, seed=rng)
            return sampler.random(n)
        if method == "random":
            return rng.random((n, d))
        raise SpaceError(f"design method must be 'sobol', 'lhs' or 'random', got {method!r}")

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible description of the space."""
        return {"parameters": [d.to_dict() for d in self.dimensions]}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Space:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(spec, Mapping) or "parameters" not in spec:
            raise SpaceError(f"a space description needs a 'parameters' list, got {spec!r}")
        return cls([_dimension_from_dict(p) for p in spec["parameters"]])

    def to_json(self) -> str:
        """The space as a JSON string (round-trips through :meth:`from_json`)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Space:
        """Rebuild a space from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))
