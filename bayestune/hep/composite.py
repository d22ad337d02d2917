"""Bayesian optimisation of a chi2 as a *composite* function (experimental).

A chi2 is an outer function (a weighted sum of squares) of an inner vector of bin values that
the simulation produces. Modelling the inner vector and computing the chi2 from it uses all
``n_bins`` numbers of each evaluation instead of one, and the bins are smooth functions with
a small dynamic range where the chi2 spans orders of magnitude (Astudillo and Frazier,
"Bayesian optimization of composite functions", ICML 2019).

:class:`BinEmulator` standardises the bins of the evaluated points, keeps the leading
principal components (Higdon et al. 2008) and fits one GP per component score with the
scores' known MC noise. :class:`CompositeChi2Engine` proposes the candidate with the largest
expected improvement of the chi2 computed from Monte Carlo draws of the emulated bins, or the
candidate whose data are most *plausible* given what the emulators know: the lowest chi2 of
the emulated bins with the emulators' own variance among the errors (the implausibility
measure of history matching, summed over the bins). Evaluations must carry their bins:
``HistogramObjective(..., keep_bins=True)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import qmc

from ..engines import Engine
from ..exceptions import BayestuneError
from ..gp import GPSurrogate, SurrogateConfig
from ..history import History
from ..space import Space
from ..uncertainty import RealCoordinates, Uncertainty, minuit_fit, uncertainty_from_minuit
from .binfits import svd
from .chi2 import HistogramObjective

__all__ = ["BinEmulator", "CompositeChi2Engine"]

#: the GP of one principal component's scores: the noise of the scores is known from the
#: runs' MC errors. Maximum-likelihood length scales: the explore stage was designed and is
#: validated on the random-truth Pythia closures with them (``bench_explore_stage.py``,
#: ``bench_closure_random.py``), not with the default surrogate's length-scale prior, and
#: without a quadratic trend (pinned, whatever the default becomes).
_COMPONENT_GP = SurrogateConfig(noise="known", n_restarts=1, lengthscale_prior=False,
                                trend=None)


class BinEmulator:
    """GP emulator of the used bins of a :class:`HistogramObjective` (PCA + one GP each).

    Parameters
    ----------
    space : Space
    objective : HistogramObjective
    max_components : int
    explained : float
        Keep components until this fraction of the standardised variance is explained.
    """

    def __init__(self, space: Space, objective: HistogramObjective, *,
                 max_components: int = 25, explained: float = 0.9999) -> None:
        self.space = space
        self.objective = objective
        self.max_components = max_components
        self.explained = explained
        self.used = objective.used_bins()
        self.data = self.used.data
        self.data_err = self.used.errors
        self.weights = self.used.weights

    def _bins_of(self, trials: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        vals = [self.used.flatten({n: v for n, (v, _) in t.info["bins"].items()}) for t in trials]
        errs = [self.used.flatten({n: e for n, (_, e) in t.info["bins"].items()}) for t in trials]
        return np.array(vals), np.array(errs)

    def fit(self, history: History, rng: np.random.Generator) -> BinEmulator:
        trials = [t for t in history.completed if "bins" in t.info]
        if len(trials) < 3:
            raise BayestuneError(
                "the composite engine needs >= 3 evaluations with bins "
                "(HistogramObjective(..., keep_bins=True))"
            )
        Y, E = self._bins_of(trials)
        X = self.space.to_unit([t.params for t in trials])
        self._mean = Y.mean(axis=0)
        spread = Y.std(axis=0)
        # a bin that does not vary over the trials (empty at low statistics) has no scale
        # of its own: 1 keeps its (zero) standardised values and its errors finite
        self._scale = np.where(spread > 1e-12 * np.abs(self._mean), spread, 1.0)
        Z = (Y - self._mean) / self._scale
        _, sv, vt = svd(Z)
        frac = np.cumsum(sv**2) / max(np.sum(sv**2), 1e-300)
        m = min(int(np.searchsorted(frac, self.explained)) + 1, self.max_components,
                len(trials) - 1)
        self._components = vt[:m]  # (m, B)
        scores = Z @ self._components.T  # (n, m)
        resid = Z - scores @ self._components
        self._resid_var = np.mean(resid**2, axis=0) * self._scale**2  # (B,)
        score_var = (E / self._scale) ** 2 @ (self._components**2).T  # (n, m)
        self._gps = []
        for k in range(m):
            gp = GPSurrogate(_COMPONENT_GP)
            gp.fit(X, scores[:, k], np.maximum(score_var[:, k], 1e-12), rng=rng)
            self._gps.append(gp)
        self.sim_err = np.median(E, axis=0)
        #: unit coordinates of the fitted trials and the chi2 of their emulated mean bins
        self.train_unit = X
        self.train_chi2 = self.chi2(self.mean_bins(X))
        self._best_params = dict(trials[int(np.argmin(self.train_chi2))].params)
        return self

    def sample_bins(self, U: np.ndarray, n_samples: int,
                    rng: np.random.Generator) -> np.ndarray:
        """Draws of the bins at unit points ``U``, shape (n_samples, q, B)."""
        means, stds = zip(*(gp.predict(U) for gp in self._gps))
        mu = np.array(means).T  # (q, m)
        sd = np.array(stds).T
        draws = mu[None] + sd[None] * rng.normal(size=(n_samples, *mu.shape))
        return self._mean + (draws @ self._components) * self._scale

    def mean_bins(self, U: np.ndarray) -> np.ndarray:
        """Posterior-mean bins at ``U``, shape (q, B)."""
        mu = np.array([gp.predict(U)[0] for gp in self._gps]).T
        return self._mean + (mu @ self._components) * self._scale

    def predict_bins(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the bins at ``U``, shapes (q, B) and (q, B)."""
        means, stds = zip(*(gp.predict(U) for gp in self._gps))
        mu = np.array(means).T
        var = np.array(stds).T ** 2
        return (self._mean + (mu @ self._components) * self._scale,
                (var @ self._components**2) * self._scale**2)

    def uncertainty(self, errordef: float = 1.0, start: dict[str, Any] | None = None,
                    ) -> Uncertainty:
        """Minimise the chi2 of the posterior-mean bins; HESSE covariance.

        The variance of each bin is the data error, the emulator's own predictive variance,
        the PCA truncation residual and the model-uncertainty floor -- not an evaluation's MC
        error, because the emulated mean averages over all evaluations.
        """
        base = dict(start if start is not None else self._best_params)
        to_unit = RealCoordinates(self.space, base)

        def fcn(*values: float) -> float:
            mean, var = self.predict_bins(to_unit(np.asarray(values))[None, :])
            return float(self._chi2_with(mean[0], var[0]))

        limits = [(d.low, d.high) for d in to_unit.dims]
        m = minuit_fit(fcn, to_unit.names, [float(base[n]) for n in to_unit.names], limits,
                       errordef)
        mean, var = self.predict_bins(to_unit(np.array(m.values))[None, :])
        r = mean[0] - self.data
        fun_std = float(np.sqrt(np.sum(self.weights**2 * 4 * r**2 * var[0]
                                       / self._variance(var[0]) ** 2)))
        return uncertainty_from_minuit(m, base, limits, errordef, fun_std=fun_std)

    def plausibility_chi2(self, U: np.ndarray) -> np.ndarray:
        """chi2 of the posterior-mean bins at unit points ``U`` (shape (q,)) with each
        bin's emulator variance added to its error: low where the emulators match the data
        and also where they do not know the bins well enough to rule a match out."""
        mean, var = self.predict_bins(U)
        return self._chi2_with(mean, self.sim_err**2 + var)

    def chi2(self, bins: np.ndarray) -> np.ndarray:
        """chi2 of bin arrays (..., B) with an evaluation's typical MC error in the variance."""
        return self._chi2_with(bins, self.sim_err**2)

    def _chi2_with(self, bins: np.ndarray, var: np.ndarray) -> np.ndarray:
        """chi2 of bin arrays (..., B) whose own variance is ``var``."""
        return np.sum(self.weights * (bins - self.data) ** 2 / self._variance(var), axis=-1)

    def _variance(self, var: np.ndarray) -> np.ndarray:
        """The chi2's denominator for bins of variance ``var``: the data error, the PCA
        truncation residual and the model-uncertainty floor added."""
        return (self.data_err**2 + var + self._resid_var
                + (self.objective.model_uncertainty * self.data) ** 2)


#: the acquisitions of :class:`CompositeChi2Engine`
COMPOSITE_ACQUISITIONS = ("ei", "plausible")


class CompositeChi2Engine(Engine):
    """Propose points from GP emulators of the bins.

    Parameters
    ----------
    space : Space
    objective : HistogramObjective
        Built with ``keep_bins=True``.
    n_candidates : int
        Space-filling candidates per proposal (plus local ones around the best points).
    n_samples : int
        Monte Carlo draws of the bins per candidate (``"ei"``).
    acquisition : {"ei", "plausible"}
        ``"ei"``: the largest expected improvement of the chi2 of Monte Carlo draws of the
        emulated bins over the best evaluated point's. ``"plausible"``: the lowest
        :meth:`BinEmulator.plausibility_chi2`. Far from the evaluated points a draw of
        the bins is a random mixture of the principal components, whose chi2 lies far above
        the valley's: the expected improvement can vanish over the whole box and the search
        then stays next to its best points, wherever along a valley they lie. The
        plausibility chi2 falls where the emulators are unsure, so the search goes on to
        the unexplored parts of the region that may hold the minimum, and it rises to the
        real chi2 as they are evaluated.
    """

    name = "composite-chi2"

    def __init__(self, space: Space, objective: HistogramObjective, *,
                 n_candidates: int = 2048, n_samples: int = 64,
                 acquisition: str = "ei") -> None:
        super().__init__(space)
        if not objective.keep_bins:
            raise BayestuneError("CompositeChi2Engine needs HistogramObjective(keep_bins=True)")
        if acquisition not in COMPOSITE_ACQUISITIONS:
            raise BayestuneError(f"acquisition must be one of {list(COMPOSITE_ACQUISITIONS)}, "
                                 f"got acquisition={acquisition!r}")
        self.objective = objective
        self.n_candidates = n_candidates
        self.n_samples = n_samples
        self.acquisition = acquisition

    def emulator(self, history: History, rng: np.random.Generator) -> BinEmulator:
        return BinEmulator(self.space, self.objective).fit(history, rng)

    def propose(self, history: History, n: int,
                rng: np.random.Generator) -> list[dict[str, Any]]:
        emu = self.emulator(history, rng)
        U_done, pred_done = emu.train_unit, emu.train_chi2
        best = float(np.min(pred_done))
        d = self.space.n_columns
        cand = [qmc.Sobol(d, scramble=True, seed=rng).random(self.n_candidates)]
        if self.acquisition == "ei":  # and candidates close to the best points
            for i in np.argsort(pred_done)[:5]:
                for width in (0.01, 0.03, 0.1):
                    cand.append(np.clip(U_done[i] + width * rng.normal(size=(64, d)), 0.0, 1.0))
        U = np.vstack(cand)
        # keep away from points in flight and from points whose evaluation failed
        chosen: list[np.ndarray] = [self.space.to_unit(t.params) for t in history.pending]
        chosen += [self.space.to_unit(t.params) for t in history.failed]
        # lower is better; the plausibility chi2 has no randomness: computed once for a batch
        plausible = emu.plausibility_chi2(U) if self.acquisition == "plausible" else None
        out = []
        for _ in range(n):
            if plausible is not None:
                score = plausible.copy()
            else:
                draws = emu.chi2(emu.sample_bins(U, self.n_samples, rng))  # (S, q)
                score = -np.mean(np.maximum(best - draws, 0.0), axis=0)
            for c in chosen:  # keep a batch apart
                score[np.linalg.norm(U - c, axis=1) < 0.02] = np.inf
            k = int(np.argmin(score))
            chosen.append(U[k])
            point = self.space.from_unit(U[k])
            assert isinstance(point, dict)
            out.append(point)
        return out
