"""Proposal engines: the strategy that turns a history into the next point(s).

* :class:`GPEngine` -- bayestune's own GP surrogate and acquisition functions.
* :class:`SkoptEngine` -- scikit-optimize's ``Optimizer`` (extra ``bayestune[skopt]``).
* :class:`GPyOptEngine` -- GPyOpt's ``BayesianOptimization`` (extra ``bayestune[gpyopt]``).

All engines are stateless between proposals apart from caches: each proposal is rebuilt
from the history, so a resumed campaign proposes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .acqopt import AcqOptimizerConfig, UnitBox, maximize_acquisition
from .acquisition import AcquisitionFunction, ExpectedImprovement, make_acquisition
from .exceptions import EngineError
from .gp import GPSurrogate, SurrogateConfig
from .history import History
from .space import Categorical, Integer, Real, Space
from .trust_region import trust_region_box, trust_region_length

__all__ = ["Engine", "GPEngine", "MultiFidelityGPEngine", "SkoptEngine", "GPyOptEngine",
           "make_engine"]

_log = logging.getLogger(__name__)

# a unit-box coordinate this close to 0 or 1 is on the box's edge (the acquisition
# maximiser's bounded steps end exactly on an edge the surrogate's bowl points through)
_EDGE = 1e-6


class Engine(ABC):
    """Proposes new points from the completed trials of a history."""

    name = "engine"

    def __init__(self, space: Space) -> None:
        self.space = space

    @abstractmethod
    def propose(
        self, history: History, n: int, rng: np.random.Generator
    ) -> list[dict[str, Any]]:
        """Return ``n`` new points given everything evaluated (and pending) so far."""

    @property
    def source(self) -> str:
        """Label recorded in the store for points this engine proposed."""
        return self.name

    def _training_data(self, history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        done = history.completed
        X = self.space.to_unit([t.params for t in done])
        return X, history.values(), history.variances()


class GPEngine(Engine):
    """bayestune's GP engine: fit :class:`GPSurrogate`, maximise an acquisition function.

    Parameters
    ----------
    space : Space
    acquisition : str or AcquisitionFunction
        ``"ei"``, ``"nei"``, ``"pi"``, ``"lcb"``, ``"thompson"`` or an instance.
    surrogate : SurrogateConfig, optional
    optimizer : AcqOptimizerConfig, optional
        Options of the acquisition maximiser.

    Notes
    -----
    Points that are pending (asked, not yet told) and the earlier points of a batch are
    handled by the *kriging believer*: the surrogate is conditioned on its own posterior
    mean at those points (hyperparameters unchanged), which removes their neighbourhood's
    expected improvement.

    A surrogate with a trend can stall: its fitted bowl, with its minimum beyond an edge of
    the box, rules out everything but the neighbourhood of an evaluated point on that edge,
    and expected improvement keeps proposing points a hair's breadth from it. With
    ``SurrogateConfig.stall_log_ei`` set (opt-in; its documentation has the measurement), a
    best log expected improvement below it at a point on the box's edge hands the proposal
    to the stationary kernel alone, refitted to the same data, whose prior reverts to the
    mean away from the data instead of following the bowl.
    """

    name = "gp"

    def __init__(
        self,
        space: Space,
        acquisition: str | AcquisitionFunction = "ei",
        surrogate: SurrogateConfig | None = None,
        optimizer: AcqOptimizerConfig | None = None,
    ) -> None:
        super().__init__(space)
        self.acquisition = make_acquisition(acquisition)
        self.surrogate = GPSurrogate(surrogate)
        self.optimizer = optimizer or AcqOptimizerConfig()
        self.box = UnitBox(dim=space.n_columns, discrete=space.discrete_columns.copy(),
                           snap=space.snap_unit, neighbours=space.neighbours)

    @property
    def source(self) -> str:
        return f"gp:{self.acquisition.name}"

    def fit(self, history: History, rng: np.random.Generator,
            surrogate: GPSurrogate | None = None) -> GPSurrogate:
        """Fit the surrogate (or another one, ``surrogate``) to the completed trials."""
        surrogate = surrogate or self.surrogate
        X, y, var = self._training_data(history)
        has_var = bool(np.any(np.isfinite(var)))
        return surrogate.fit(X, y, var if has_var else None, rng)

    def propose(
        self, history: History, n: int, rng: np.random.Generator
    ) -> list[dict[str, Any]]:
        believe = self._believer(history)
        posteriors = believe(self._posteriors(history, rng))
        stationary: list[Any] | None = None
        anchors = self._anchors(history)
        region = self._trust_region(history, anchors)
        chosen: list[np.ndarray] = []
        for i in range(n):
            x, value = self._maximise(posteriors, rng, anchors, region)
            if self._stalled(value, x):
                if stationary is None:
                    stationary = self._stationary_posteriors(history, rng)
                    stationary = believe(stationary, np.array(chosen).reshape(-1, x.size))
                _log.info("log EI %.3g below stall_log_ei: proposing from the stationary "
                          "kernel alone", value)
                x, _ = self._maximise(stationary, rng, anchors, region)
            chosen.append(x)
            if i + 1 < n:
                posteriors = [p.fantasize(x[None, :]) for p in posteriors]
                if stationary is not None:
                    stationary = [p.fantasize(x[None, :]) for p in stationary]
        return [self.space.from_unit(x) for x in chosen]  # type: ignore[misc]

    def _maximise(self, posteriors: list[Any], rng: np.random.Generator, anchors: np.ndarray,
                  region: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, float]:
        self.acquisition.prepare(posteriors, rng)
        return maximize_acquisition(self.acquisition, self.box, rng, self.optimizer,
                                    anchors=anchors, region=region)

    def _believer(self, history: History
                  ) -> Callable[..., list[Any]]:
        """A function that conditions posteriors on the points to avoid (and on extra
        points, the earlier picks of a batch) at believed values.

        Points in flight are believed at the posterior mean, so that their uncertainty no
        longer draws the search to them; points whose evaluation failed at the worse of the
        mean and the worst value observed (SMAC's "crash cost"): believed at the mean alone,
        a failed point where the surrogate extrapolates low values keeps its neighbourhood
        attractive, and the search returned there until the campaign stopped on ten
        failures in a row (tests/test_reliability.py)."""
        pending = [t.params for t in history.pending]
        failed = _failed_points(history)
        X_avoid = self.space.to_unit(pending + failed) if pending or failed else None
        crashed = np.arange(len(pending) + len(failed)) >= len(pending)

        def believe(posteriors: list[Any], extra: np.ndarray | None = None) -> list[Any]:
            if X_avoid is not None:
                posteriors = [p.fantasize(X_avoid, floor=np.where(crashed, np.max(p.z_train),
                                                                  -np.inf))
                              for p in posteriors]
            if extra is not None and len(extra):
                posteriors = [p.fantasize(extra) for p in posteriors]
            return posteriors

        return believe

    def _stalled(self, value: float, x: np.ndarray) -> bool:
        """Whether the trended surrogate's expected improvement is negligible everywhere
        and its best point ``x`` (unit box) lies on an edge of a continuous column: the
        bowl's minimum beyond the box. At a converged interior minimum the trended model
        keeps refining."""
        config = self.surrogate.config
        if (config.trend is None or config.stall_log_ei is None
                or not isinstance(self.acquisition, ExpectedImprovement)
                or value >= config.stall_log_ei):
            return False
        edge = (x <= _EDGE) | (x >= 1.0 - _EDGE)
        return bool(np.any(edge & ~self.box.discrete))

    def _stationary_posteriors(self, history: History, rng: np.random.Generator) -> list[Any]:
        """Posteriors of the stationary kernel alone (the trend dropped), fitted to the same
        data with its own random stream."""
        config = dataclasses.replace(self.surrogate.config, trend=None)
        return self._posteriors(history, np.random.default_rng(rng.integers(2**63)),
                                GPSurrogate(config))

    def _posteriors(self, history: History, rng: np.random.Generator,
                    surrogate: GPSurrogate | None = None) -> list[Any]:
        """Fit the surrogate (or ``surrogate``); the posteriors the acquisition works on."""
        return list(self.fit(history, rng, surrogate).posteriors)

    def _trust_region(self, history: History,
                      anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The search box around the best trial, or ``None`` (no trust region)."""
        config = self.optimizer.trust_region
        if config is None or not len(anchors):
            return None
        done = history.completed
        length = trust_region_length([float(t.value) for t in done],  # type: ignore[arg-type]
                                     [t.source == self.source for t in done],
                                     self.space.n_columns, config)
        # a multi-fidelity surrogate has the training budget as its last column
        lengthscales = self.surrogate.lengthscales[: self.box.dim]
        return trust_region_box(anchors[0], lengthscales, length)

    def _anchors(self, history: History, k: int = 3) -> np.ndarray:
        """Unit-cube positions of the ``k`` best completed trials."""
        best = sorted(history.completed, key=lambda t: t.value)[:k]  # type: ignore[arg-type,return-value]
        return self.space.to_unit([t.params for t in best])


class FixedColumnPosterior:
    """A posterior over ``(x, c)`` seen as a posterior over ``x`` with the last column at ``c``.

    The multi-fidelity engine uses it to maximise the acquisition at full training budget
    while the GP is fitted to all budgets. ``z_train`` holds the posterior means at ``c`` of
    the evaluated configurations (the incumbents of EI), in model space.
    """

    def __init__(self, inner: Any, value: float = 1.0) -> None:
        self.inner = inner
        self.value = value
        configs = np.unique(inner.X_train[:, :-1], axis=0)
        self.X_train = configs
        self.z_train = inner.predict(self._full(configs))[0]
        self.noise_train = np.zeros(len(configs))

    def _full(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        return np.hstack([X, np.full((len(X), 1), self.value)])

    @property
    def dim(self) -> int:
        return int(self.inner.dim) - 1

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.predict(self._full(X))  # type: ignore[no-any-return]

    def predict_with_grad(
        self, X: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mu, var, dmu, dvar = self.inner.predict_with_grad(self._full(X))
        return mu, var, dmu[:, :-1], dvar[:, :-1]

    def joint(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.joint(self._full(X))  # type: ignore[no-any-return]

    def fantasize(self, X_new: np.ndarray,
                  floor: np.ndarray | float | None = None) -> FixedColumnPosterior:
        return FixedColumnPosterior(self.inner.fantasize(self._full(X_new), floor), self.value)


class MultiFidelityGPEngine(GPEngine):
    """GP over the configuration and the training budget, for campaigns with early stopping.

    Every value a trial reported at a rung of the scheduler (and its final value) is a
    training point ``(x, b)`` with the budget ``b`` scaled to [0, 1] logarithmically between
    the first rung and the full budget; the ARD kernel learns how informative short trainings
    are about full ones. The acquisition is maximised at full budget. Compared with fitting
    only the trials that reached one common budget, stopped trials keep informing the model.

    Parameters
    ----------
    space : Space
    scheduler : ASHA
        Defines the rungs and the full budget.
    acquisition, surrogate, optimizer
        As for :class:`GPEngine`.
    """

    name = "gp-mf"

    def __init__(self, space: Space, scheduler: Any, acquisition: str | AcquisitionFunction = "ei",
                 surrogate: SurrogateConfig | None = None,
                 optimizer: AcqOptimizerConfig | None = None) -> None:
        super().__init__(space, acquisition, surrogate, optimizer)
        self.scheduler = scheduler

    @property
    def source(self) -> str:
        return f"gp-mf:{self.acquisition.name}"

    def budget_coordinate(self, level: float) -> float:
        """``log(level / first rung) / log(full / first rung)`` in [0, 1]."""
        lo, hi = self.scheduler.min_resource, self.scheduler.max_resource
        if hi <= lo:
            return 1.0
        return float(np.clip(math.log(level / lo) / math.log(hi / lo), 0.0, 1.0))

    def _training_data(self, history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, values, variances = [], [], []
        levels = [*self.scheduler.rungs, self.scheduler.max_resource]
        for t in history.completed:
            u = self.space.to_unit(t.params)
            for level in levels:
                v = self.scheduler.value_at_level(t, level)
                if v is None or not math.isfinite(v):
                    continue
                rows.append(np.append(u, self.budget_coordinate(level)))
                values.append(float(v))
                variances.append(np.nan if t.variance is None else float(t.variance))
        if not rows:
            return np.empty((0, self.space.n_columns + 1)), np.empty(0), np.empty(0)
        return np.array(rows), np.array(values), np.array(variances)

    def _posteriors(self, history: History, rng: np.random.Generator,
                    surrogate: GPSurrogate | None = None) -> list[Any]:
        return [FixedColumnPosterior(p, 1.0) for p in super()._posteriors(history, rng,
                                                                          surrogate)]


# ----------------------------------------------------------------------- peer engines
@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """Run legacy code that draws from ``np.random`` deterministically, then restore it.

    GPyOpt and parts of scikit-optimize use NumPy's global generator; bayestune itself
    never does. The caller's global state is restored afterwards.
    """
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed % (2**32))  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


class SkoptEngine(Engine):
    """Proposals from ``skopt.Optimizer`` (GP base estimator, ``gp_hedge`` by default).

    Parameters
    ----------
    space : Space
    **optimizer_kwargs
        Passed to ``skopt.Optimizer`` (e.g. ``acq_func="EI"``).
    """

    name = "skopt"

    def __init__(self, space: Space, **optimizer_kwargs: Any) -> None:
        super().__init__(space)
        try:
            import skopt  # noqa: F401
        except ImportError as exc:
            raise EngineError(
                "engine='skopt' needs scikit-optimize: pip install 'bayestune[skopt]'"
            ) from exc
        self.kwargs = {"base_estimator": "GP", "acq_func": "gp_hedge", **optimizer_kwargs}

    def _dimensions(self) -> list[Any]:
        import skopt.space as ss

        dims: list[Any] = []
        for d in self.space:
            if isinstance(d, Real):
                dims.append(ss.Real(d.low, d.high, prior="log-uniform" if d.log else "uniform",
                                    name=d.name))
            elif isinstance(d, Integer):
                dims.append(ss.Integer(d.low, d.high,
                                       prior="log-uniform" if d.log else "uniform", name=d.name))
            elif isinstance(d, Categorical):
                dims.append(ss.Categorical(list(d.choices), name=d.name))
        return dims

    def propose(
        self, history: History, n: int, rng: np.random.Generator
    ) -> list[dict[str, Any]]:
        import skopt

        seed = int(rng.integers(2**31))
        with _seeded_global_numpy(seed):
            opt = skopt.Optimizer(self._dimensions(), n_initial_points=0, random_state=seed,
                                  **self.kwargs)
            done = history.completed
            X = [[t.params[name] for name in self.space.names] for t in done]
            opt.tell(X, [float(t.value) for t in done])  # type: ignore[arg-type]
            asked = opt.ask(n_points=n) if n > 1 else [opt.ask()]
        return [self._to_point(row) for row in asked]

    def _to_point(self, row: list[Any]) -> dict[str, Any]:
        point = {}
        for d, v in zip(self.space, row):
            v = v.item() if hasattr(v, "item") else v
            point[d.name] = d.validate(v) if not isinstance(d, Real) else float(
                min(max(v, d.low), d.high))
        return point


class GPyOptEngine(Engine):
    """Proposals from ``GPyOpt.methods.BayesianOptimization`` (EI by default).

    Log-scale parameters are handed to GPyOpt as continuous variables in ``ln(value)``.

    Parameters
    ----------
    space : Space
    **bo_kwargs
        Passed to ``BayesianOptimization`` (e.g. ``acquisition_type="LCB"``).
    """

    name = "gpyopt"

    def __init__(self, space: Space, **bo_kwargs: Any) -> None:
        super().__init__(space)
        try:
            import GPyOpt  # noqa: F401
        except ImportError as exc:
            raise EngineError(
                "engine='gpyopt' needs GPyOpt (and setuptools<81 for pkg_resources): "
                "pip install 'bayestune[gpyopt]'"
            ) from exc
        self.kwargs = {"acquisition_type": "EI", "normalize_Y": True, **bo_kwargs}

    def _domain(self) -> list[dict[str, Any]]:
        domain = []
        for d in self.space:
            if isinstance(d, Real):
                lo, hi = (math.log(d.low), math.log(d.high)) if d.log else (d.low, d.high)
                domain.append({"name": d.name, "type": "continuous", "domain": (lo, hi)})
            elif isinstance(d, Integer):
                domain.append({"name": d.name, "type": "discrete",
                               "domain": tuple(range(d.low, d.high + 1))})
            elif isinstance(d, Categorical):
                domain.append({"name": d.name, "type": "categorical",
                               "domain": tuple(range(len(d.choices)))})
        return domain

    def _encode(self, point: dict[str, Any]) -> list[float]:
        row: list[float] = []
        for d in self.space:
            v = point[d.name]
            if isinstance(d, Real):
                row.append(math.log(v) if d.log else float(v))
            elif isinstance(d, Integer):
                row.append(float(v))
            elif isinstance(d, Categorical):
                row.append(float(d.index(v)))
        return row

    def _decode(self, row: np.ndarray) -> dict[str, Any]:
        point: dict[str, Any] = {}
        for d, v in zip(self.space, row):
            if isinstance(d, Real):
                x = math.exp(v) if d.log else float(v)
                point[d.name] = float(min(max(x, d.low), d.high))
            elif isinstance(d, Integer):
                point[d.name] = int(min(max(round(v), d.low), d.high))
            elif isinstance(d, Categorical):
                point[d.name] = d.choices[int(round(v))]
        return point

    def propose(
        self, history: History, n: int, rng: np.random.Generator
    ) -> list[dict[str, Any]]:
        import GPyOpt

        done = history.completed
        X = np.array([self._encode(t.params) for t in done])
        Y = history.values()[:, None]
        noisy = bool(np.any(np.isfinite(history.variances())))
        pending = [self._encode(t.params) for t in history.pending]
        seed = int(rng.integers(2**31))
        rows: list[np.ndarray] = []
        domain = self._domain()
        pending_X = np.array(pending) if pending else None
        with _seeded_global_numpy(seed):
            # Batches by kriging believer: GPyOpt 1.2.6's local penalisation is broken with
            # current SciPy (it indexes the scalar result of scipy.optimize.minimize).
            for _ in range(n):
                bo = GPyOpt.methods.BayesianOptimization(
                    f=None, domain=domain, X=X, Y=Y, exact_feval=not noisy,
                    de_duplication=True, **self.kwargs)
                row = np.atleast_2d(bo.suggest_next_locations(pending_X=pending_X))[0]
                rows.append(row)
                believed = bo.model.predict(bo.space.unzip_inputs(row[None, :]))[0]
                if self.kwargs.get("normalize_Y") and float(np.std(Y)) > 0:
                    believed = believed * float(np.std(Y)) + float(np.mean(Y))
                X, Y = np.vstack([X, row]), np.vstack([Y, np.atleast_2d(believed)])
        return [self._decode(r) for r in rows]


ENGINE_NAMES = ("gp", "skopt", "gpyopt")


def _failed_points(history: History) -> list[dict[str, Any]]:
    """The points whose evaluation failed (not those abandoned unevaluated)."""
    return [t.params for t in history.failed if not (t.error or "").startswith("abandoned")]


def check_engine(name: str | Engine) -> None:
    """Raise :class:`EngineError` unless ``name`` is an :class:`Engine` or one of
    :data:`ENGINE_NAMES`."""
    if not isinstance(name, Engine) and name not in ENGINE_NAMES:
        raise EngineError(f"engine must be one of {list(ENGINE_NAMES)} or an Engine, "
                          f"got engine={name!r}")


def make_engine(
    name: str | Engine,
    space: Space,
    acquisition: str | AcquisitionFunction = "ei",
    surrogate: SurrogateConfig | None = None,
    optimizer: AcqOptimizerConfig | None = None,
) -> Engine:
    """Resolve a user-facing engine name (``"gp"``, ``"skopt"``, ``"gpyopt"``)."""
    check_engine(name)
    if isinstance(name, Engine):
        return name
    if name == "gp":
        return GPEngine(space, acquisition, surrogate, optimizer)
    if name == "skopt":
        return SkoptEngine(space)
    return GPyOptEngine(space)
