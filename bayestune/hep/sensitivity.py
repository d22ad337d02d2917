"""Which observables constrain which parameters: a sensitivity table from a design of runs.

Before a tune of many parameters one wants to know which observables each parameter moves,
and by how much compared with the data's errors -- to choose blocks of parameters, to drop a
parameter nothing constrains, or to see why a direction of the fit is flat. Professor prints
such a table from its per-bin polynomials; :func:`sensitivity` makes one from any set of
runs with stored bins (the explore stage's space-filling design is the natural one).

Every used bin is fitted with a quadratic in the parameters (a linear function when there are
too few runs for a quadratic), in units where the chi2 is a sum of squares (the bin over the
square root of its data denominator and weight). The gradient of each bin with respect to
each parameter, in fractions of its range, is taken at every run, and the Delta chi2 an
observable gets from moving one parameter by ``step`` of its range is the sum over its bins of
the squared change, averaged over the runs: a linear estimate, the average over the box. The
fitted gradients carry the runs' MC noise, which adds ``Var(gradient)`` to every square; that
expectation (from the fit's residuals) is subtracted and reported as the table's noise
floor, so a parameter the observable does not see reads about zero, not the noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..exceptions import BayestuneError
from ..history import Trial
from ..quadratic import feature_gradient, n_quadratic_terms, quadratic_features
from ..space import Real, Space
from .binfits import _carrying_bins, _data_denominators, _used_bins_of
from .chi2 import HistogramObjective

__all__ = ["Sensitivity", "sensitivity"]


@dataclass(frozen=True)
class Sensitivity:
    """The Delta chi2 of each observable when one parameter moves (see :func:`sensitivity`).

    Attributes
    ----------
    observables, parameters : tuple of str
        Rows and columns of the tables.
    delta_chi2 : ndarray, shape (observables, parameters)
        Delta chi2 of the observable for a shift of ``step`` of the parameter's range, averaged
        over the runs, the fitted gradients' MC noise subtracted (so it can be slightly
        negative where the observable does not see the parameter).
    noise : ndarray, shape (observables, parameters)
        What that noise added before it was subtracted: values well below it are not
        resolved by these runs.
    step : float
        The shift, as a fraction of each parameter's range.
    n_runs : int
        Runs fitted.
    model : str
        ``"quadratic"`` or ``"linear"`` (fewer runs than a quadratic needs).
    """

    observables: tuple[str, ...]
    parameters: tuple[str, ...]
    delta_chi2: np.ndarray
    noise: np.ndarray
    step: float
    n_runs: int
    model: str

    def total(self) -> dict[str, float]:
        """Delta chi2 over all observables, by parameter: how strongly the data fix each."""
        return {p: float(v) for p, v in zip(self.parameters, self.delta_chi2.sum(axis=0))}

    def ranking(self, parameter: str) -> list[tuple[str, float]]:
        """The observables by their Delta chi2 for ``parameter``, largest first."""
        if parameter not in self.parameters:
            raise KeyError(f"no parameter {parameter!r} in the table; it has "
                           f"{list(self.parameters)}")
        column = self.delta_chi2[:, self.parameters.index(parameter)]
        order = np.argsort(-column, kind="stable")
        return [(self.observables[i], float(column[i])) for i in order]

    def resolved(self, n_noise: float = 3.0) -> np.ndarray:
        """Where the Delta chi2 exceeds ``n_noise`` times its noise floor (and 1)."""
        return (self.delta_chi2 > n_noise * self.noise) & (self.delta_chi2 > 1.0)

    def table(self, width: int = 9) -> str:
        """The table as text: one row per observable, one column per parameter (its short
        name), ``.`` where the value is not resolved (:meth:`resolved`)."""
        short = [p.split(":")[-1][:width] for p in self.parameters]
        name_width = max(len(o) for o in self.observables)
        lines = [f"Delta chi2 for a shift of {self.step:g} of each range ({self.model} fits "
                 f"of {self.n_runs} runs; '.': below 3x its noise or 1)",
                 " " * name_width + "".join(f" {s:>{width}}" for s in short)]
        resolved = self.resolved()
        for i, name in enumerate(self.observables):
            cells = [f"{v:{width}.1f}" if ok else f"{'.':>{width}}"
                     for v, ok in zip(self.delta_chi2[i], resolved[i])]
            lines.append(f"{name:{name_width}s} " + " ".join(cells))
        totals = " ".join(f"{v:{width}.1f}" for v in self.delta_chi2.sum(axis=0))
        lines.append(f"{'total':{name_width}s} " + totals)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def sensitivity(trials: Sequence[Trial], space: Space, objective: HistogramObjective, *,
                step: float = 0.1) -> Sensitivity:
    """The sensitivity of every used observable to every real parameter of ``space``, from
    ``trials`` that carry their bins (``keep_bins=True``), such as a tune's explore stage.

    Parameters
    ----------
    trials : sequence of Trial
        Complete runs with ``info["bins"]``; spread over the box (a design), since the table
        averages over them.
    space : Space
        Its real parameters are the columns; their ranges set the units of ``step``.
    objective : HistogramObjective
        The data, weights and model-uncertainty floor that define the chi2.
    step : float
        The shift of each parameter, as a fraction of its range (0 < step <= 1): Delta chi2
        grows as its square.
    """
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0.0 < step <= 1.0:
        raise ValueError(f"step must be a fraction of the range in (0, 1], got step={step!r}")
    dims = [d for d in space if isinstance(d, Real)]
    if not dims:
        raise BayestuneError("sensitivity needs at least one Real parameter in the space")
    runs = _carrying_bins([t for t in trials if t.value is not None], "a trial")
    k = len(dims)
    if len(runs) < k + 3:
        raise BayestuneError(f"a sensitivity table of {k} parameters needs at least {k + 3} "
                             f"runs with bins, got {len(runs)}")
    low = np.array([d.low for d in dims])
    span = np.array([d.high - d.low for d in dims])
    v = (np.array([[float(t.params[d.name]) for d in dims] for t in runs]) - low) / span
    u = v - v.mean(axis=0)
    quadratic = len(runs) >= n_quadratic_terms(k) + 2
    A = quadratic_features(u) if quadratic else np.hstack([np.ones((len(u), 1)), u])
    used = objective.used_bins()
    Y, _ = _used_bins_of(runs, used)
    Z = Y / np.sqrt(_data_denominators(used, objective) / used.weights)
    coef, *_ = np.linalg.lstsq(A, Z, rcond=None)  # (p, B)
    dof = max(len(runs) - A.shape[1], 1)
    resid_var = np.sum((Z - A @ coef) ** 2, axis=0) / dof  # (B,)
    gram = np.linalg.pinv(A.T @ A)
    if quadratic:
        D = np.array([feature_gradient(row) for row in u])  # (n, k, p)
    else:
        D = np.broadcast_to(np.eye(k + 1)[1:], (len(u), k, k + 1))
    grads = np.einsum("nkp,pb->nkb", D, coef)  # each bin's gradient at each run
    grad_var = np.einsum("nkp,pq,nkq->nk", D, gram, D)[:, :, None] * resid_var  # (n, k, B)
    names = list(used.masks)
    groups = np.repeat(np.arange(len(names)), [int(np.sum(m)) for m in used.masks.values()])
    square = step**2 * np.mean(grads**2, axis=0)  # (k, B)
    floor = step**2 * np.mean(grad_var, axis=0)
    per_obs = np.array([(square - floor)[:, groups == o].sum(axis=1) for o in range(len(names))])
    noise = np.array([floor[:, groups == o].sum(axis=1) for o in range(len(names))])
    return Sensitivity(tuple(names), tuple(d.name for d in dims), per_obs, noise, float(step),
                       len(runs), "quadratic" if quadratic else "linear")
