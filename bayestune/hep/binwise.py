"""Bin-by-bin polynomial surrogates of simulated histograms (the Professor method).

A chi2 summed over a hundred bins is a noisy function with a huge dynamic range; each bin's
prediction, by contrast, is a smooth, nearly quadratic function of the parameters near a good
tune. :func:`fit_binwise` fits every bin's simulated value with a quadratic polynomial in the
real parameters (bin by bin, or reduced-rank: all bins together through their leading
principal components), and :class:`BinwiseModel` rebuilds the chi2 from those polynomials::

    chi2(theta) = sum_o w_o sum_b w_ob (p_b(theta) - d_b)^2 / (sigma_d^2 + (f d)^2)

with the data's errors only. Its minimum and covariance (:meth:`BinwiseModel.uncertainty`:
HESSE plus the spread of the minima of replicas of the fits) average the MC noise of all
fitted evaluations, which a surrogate of the summed chi2 cannot resolve when that noise is far
above Delta chi2 = 1. :func:`refine_binwise` spends evaluations on a local design for it, round
by round. The evaluations must carry their bins: build the objective with
``HistogramObjective(..., keep_bins=True)``.

Polynomials are trusted only inside the box spanned by the fitted points: the minimum is
searched there, and one within half an error of its edge is reported in ``at_limit``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..history import Trial
from ..quadratic import (
    feature_gradient,
    feature_hessian,
    quadratic_features,
)
from ..space import Real, Space
from ..uncertainty import Uncertainty, minuit_fit, uncertainty_from_minuit
from .binfits import (
    _BinFit,
    _data_denominators,
    _design_leverage,
    _positive_part,
)
from .chi2 import HistogramObjective
from .newton import (
    NEWTON_STEPS,
    form_derivatives,
    inverse_in_units,
    newton_step,
    step_inside,
    with_form,
)

if TYPE_CHECKING:
    from iminuit import Minuit

__all__ = ["BinwiseModel", "binwise_round_size"]

_log = logging.getLogger(__name__)

#: What the replicas' noise is drawn with: the fitted runs' residuals (their covariance, lack
#: of fit included) or each bin's quoted MC error with the residuals' correlation
REPLICA_NOISE = ("residuals", "quoted")
#: the MC part of a debiased fit's covariance: the replicas' minima; their gradients
#: extrapolated to a centre without noise; the replicas' minima less the excess that
#: extrapolation finds; the replicas' minima scaled by the share of their spread that the
#: extrapolation keeps (:meth:`BinwiseModel.uncertainty`)
MC_PARTS = ("replicas", "extrapolated", "corrected", "scaled", "geometric")
#: what bounds the replicas' minima: the fitted box, or only a debiased fit's leverage wall
REPLICA_BOUNDS = ("box", "wall")
#: replicas of a fit that make the MC part of its covariance, unless told otherwise
N_REPLICAS = 40


class BinwiseModel:
    """Quadratic per-bin models of an objective's histograms and the chi2 built from them.

    Use :func:`fit_binwise` to construct one.

    Attributes
    ----------
    box : tuple of arrays
        Lower and upper corners of the fitted points (the minimum is searched there).
    debiased : bool
        Whether the fits' own noise is subtracted from the chi2 (a fit with ``basis``).
    trials, basis : tuple of Trial
        The evaluations fitted and, for a debiased model, the earlier ones its directions
        were taken from (what :func:`fit_binwise` was given; refit them to check the model).
    max_leverage : float
        The largest leverage of the fitted points (infinite unless debiased): the chi2 is
        trusted where :meth:`leverage` is below it.
    lack_of_fit : float
        For a debiased model, the residuals of the quadratics over what MC noise of
        independent bins with the quoted errors would leave of them (1 otherwise). One run's
        bins are correlated, so it exceeds 1 even where the bins are quadratic: 1.3-2.7 in
        the emulated and Pythia closures, where counting the correlation gives 0.9-1.1.
    noise_factor : array or None
        A debiased model's model of one run's MC noise across the used bins: rows ``F``
        with ``F.T @ F`` its covariance in units of the quoted errors (what its replicas
        draw; None for other fits).
    replica_variance : float
        The variance of a debiased model's replica noise in units of the quoted MC errors:
        1 when the replicas draw the quoted errors (``replica_noise="quoted"``), the lack
        of fit (at least 1) when they draw the residuals' covariance.
    """

    def __init__(self, space: Space, objective: HistogramObjective, dims: list[Real],
                 centre: np.ndarray, scale: np.ndarray, fits: dict[str, _BinFit],
                 box: tuple[np.ndarray, np.ndarray], n_points: int, fixed: dict[str, Any],
                 draw: Callable[[np.random.Generator], dict[str, np.ndarray]] | None = None,
                 design: np.ndarray | None = None, lack_of_fit: float = 1.0,
                 noise_factor: np.ndarray | None = None, replica_variance: float = 1.0,
                 trials: Sequence[Trial] = (), basis: Sequence[Trial] = ()):
        self.space = space
        self.objective = objective
        self._used = objective.used_bins()
        self.dims = dims
        self.names = [d.name for d in dims]
        self._centre = centre
        self._scale = scale
        self._fits = fits
        self.box = box
        self.n_points = n_points
        self._fixed = fixed
        self.trials: tuple[Trial, ...] = tuple(trials)
        self.basis: tuple[Trial, ...] = tuple(basis)
        self._draw = draw if draw is not None else self._draw_per_bin
        # with ``design`` (the fitted trials' features) the fits' noise is subtracted from the
        # chi2, and the chi2 is trusted only where the design's leverage is no larger than at
        # its own most exposed point
        self.debiased = design is not None
        self.lack_of_fit = lack_of_fit
        self.replica_variance = replica_variance
        self.noise_factor = noise_factor
        self._den = _data_denominators(self._used, objective)
        self._noise_form = self._fit_noise_form()
        self._gram: np.ndarray | None = None
        self.max_leverage = math.inf
        if design is not None:
            self._gram, self.max_leverage = _design_leverage(design)

    def _fit_noise_form(self) -> np.ndarray:
        """``M`` with ``f(theta)^T M f(theta) = sum_b w_b Var(p_b(theta)) / D_b``: what the
        fits' noise adds to the chi2 of the fitted bins on average, a quadratic form in the
        features."""
        used = self._used
        cov = used.flatten({n: fit.cov for n, fit in self._fits.items() if n in used.masks})
        return np.asarray(np.einsum("b,bpq->pq", used.weights / self._den, cov))

    def leverage(self, values: Sequence[float] | np.ndarray) -> float:
        """The fitted design's leverage at ``values`` (a prediction's variance in units of
        one evaluation's noise); 0 for a model that is not debiased."""
        if self._gram is None:
            return 0.0
        feat = quadratic_features(self._u(np.asarray(values, dtype=float)))[0]
        return float(feat @ self._gram @ feat)

    def fit_noise(self, values: Sequence[float] | np.ndarray) -> float:
        """What the fits' own noise adds to the chi2 of the fitted bins at ``values`` on
        average, ``sum_b w_b Var(p_b(theta)) / D_b`` (subtracted when debiased)."""
        feat = quadratic_features(self._u(np.asarray(values, dtype=float)))[0]
        return float(feat @ self._noise_form @ feat)

    def _u(self, values: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(values) - self._centre) / self._scale

    def used_jacobian(self, values: Sequence[float] | np.ndarray,
                      directions: np.ndarray) -> np.ndarray:
        """Derivatives ``(B, m)`` of the chi2's used bins (flattened as in the chi2) at
        ``values`` along the columns of ``directions`` ``(k, m)`` (real parameters' units;
        exact for the quadratics)."""
        x = np.asarray(values, dtype=float)
        cols = []
        for v in np.asarray(directions, dtype=float).T:
            up, down = self.predict(x + v), self.predict(x - v)
            cols.append(self._used.flatten({n: 0.5 * (up[n][0] - down[n][0]) for n in up}))
        if not cols:  # no directions (a line through one parameter has no "across")
            return np.zeros((len(self._used.data), 0))
        return np.column_stack(cols)

    def predict(
        self, values: Sequence[float] | np.ndarray
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Predicted bin values and their errors at the real parameters ``values``."""
        f = quadratic_features(self._u(np.asarray(values, dtype=float)))[0]
        out = {}
        for name, fit in self._fits.items():
            mean = fit.coef @ f
            var = np.einsum("p,bpq,q->b", f, fit.cov, f)
            out[name] = (mean, np.sqrt(np.maximum(var, 0.0)))
        return out

    def _chi2_of(self, coef: dict[str, np.ndarray], values: Sequence[float] | np.ndarray,
                 wall: bool = True, noise: float = 1.0) -> float:
        """The chi2 of the bins ``coef`` predicts (less ``noise`` times the fits' noise when
        debiased, with a steep wall beyond the design's largest leverage unless ``wall`` is
        false)."""
        used = self._used
        feat = quadratic_features(self._u(np.asarray(values, dtype=float)))[0]
        pred = used.flatten({n: c @ feat for n, c in coef.items()})
        value = float(np.sum(used.weights * (pred - used.data) ** 2 / self._den))
        if self._gram is None:
            return value
        value -= noise * float(feat @ self._noise_form @ feat)
        excess = float(feat @ self._gram @ feat) / self.max_leverage - 1.0
        return value + 1e4 * excess**2 if wall and excess > 0 else value

    def _derivatives(self, coef: dict[str, np.ndarray], values: np.ndarray,
                     noise: float = 1.0, wall: bool = False
                     ) -> tuple[float, np.ndarray, np.ndarray]:
        """The chi2 of ``coef`` (as :meth:`_chi2_of`), its gradient and its Hessian at
        ``values``, exact (the chi2 is a polynomial, its wall a square), in the fitted box's
        units ``u`` (divide by ``scale`` for the parameters')."""
        used = self._used
        u = self._u(values)[0]
        feat, dfeat = quadratic_features(u)[0], feature_gradient(u)  # (p,), (k, p)
        d2feat = feature_hessian(u.size)  # (p, k, k)
        C = used.flatten(coef)  # (B, p)
        a = used.weights / self._den
        r = C @ feat - used.data
        J = C @ dfeat.T  # (B, k): the bins' derivatives
        value = float(a @ r**2)
        grad = 2.0 * J.T @ (a * r)
        hess = 2.0 * (J.T * a) @ J + 2.0 * np.einsum("p,pkl->kl", (a * r) @ C, d2feat)
        if self._gram is None:
            return value, grad, hess
        value, grad, hess = with_form(value, grad, hess, self._noise_form, feat, dfeat,
                                       d2feat, -noise)
        q = float(feat @ self._gram @ feat)  # the leverage, and the wall beyond its maximum
        if wall and q > self.max_leverage:  # 1e4 excess^2, its derivatives through q's
            excess = q / self.max_leverage - 1.0
            dq, d2q = form_derivatives(self._gram, feat, dfeat, d2feat)
            value += 1e4 * excess**2
            grad = grad + 2e4 * excess * dq / self.max_leverage
            hess = hess + 2e4 * (np.outer(dq, dq) / self.max_leverage
                                 + excess * d2q) / self.max_leverage
        return value, grad, hess

    def _polished(self, coef: dict[str, np.ndarray], start: np.ndarray,
                  limits: Sequence[tuple[float, float]], noise: float = 1.0) -> np.ndarray:
        """MIGRAD's minimum ``start`` of the walled chi2 refined by Newton steps with its
        exact derivatives.

        MIGRAD stops within its tolerance of the minimum, and where exactly depends on its
        path, which round-off steers: another CPU's BLAS moves it by about 1e-6 of the value,
        enough to change the next design and its seeded noise. A converged Newton iteration
        ends at the minimum itself (to round-off), so that what follows depends on the data,
        not on the machine. A step that would cross a limit stops on it, and the parameter
        stays there while the chi2 falls towards it (the others are refined); a step that
        would raise the chi2 is halved; where the Hessian is not positive definite, it is
        damped towards its diagonal (Levenberg-Marquardt)."""
        lo, hi = (np.array(b, dtype=float) for b in zip(*limits))
        x = np.clip(np.asarray(start, dtype=float), lo, hi)
        for _ in range(NEWTON_STEPS):
            value, grad, hess = self._derivatives(coef, x, noise, wall=True)
            step = newton_step(grad, hess, x <= lo, x >= hi)
            if step is None:
                break
            step *= self._scale
            ceiling = value + 1e-12 * (1.0 + abs(value))

            def no_higher(v: np.ndarray, top: float = ceiling) -> bool:
                return bool(self._derivatives(coef, v, noise, wall=True)[0] <= top)

            new = step_inside(x, step, lo, hi, no_higher)
            if new is None:
                break
            moved = np.abs(new - x) / self._scale
            x = new
            if np.all(moved <= 1e-12 * (1.0 + np.abs(self._u(x)[0]))):
                break
        return x

    def _exact_covariance(self, coef: dict[str, np.ndarray], best: np.ndarray,
                          errordef: float, noise: float = 1.0) -> np.ndarray | None:
        """``2 errordef H^-1`` of the chi2 (no limits, no wall) at ``best``, as HESSE's but
        exact (None when not positive definite); with ``noise`` below 1, the sandwich ``2
        errordef H_n^-1 H_1 H_n^-1`` of the chi2 subtracting that share of the fits' noise
        (:meth:`uncertainty`), or its ``2 errordef H_n^-1`` where ``H_1`` is not positive
        definite."""
        hess = self._derivatives(coef, best, noise)[2]  # in the box's units
        try:
            cov_u = np.linalg.inv(hess)
        except np.linalg.LinAlgError:
            return None
        if noise != 1.0:
            information = self._derivatives(coef, best)[2]
            if np.all(np.linalg.eigvalsh(0.5 * (information + information.T)) > 0):
                cov_u = cov_u @ information @ cov_u.T
        cov_u = errordef * (cov_u + cov_u.T)  # 2 errordef H^-1, symmetric
        if not np.all(np.linalg.eigvalsh(cov_u) > 0):
            return None
        return cov_u * np.outer(self._scale, self._scale)

    def chi2(self, values: Sequence[float] | np.ndarray) -> tuple[float, float]:
        """The chi2 of the fitted bins against the data (data errors and the model floor in
        the denominators) and its standard deviation from the fits' errors (bins taken as
        independent).

        For a debiased model (:func:`fit_binwise` with ``basis``) the fits' own noise,
        ``sum_b w_b Var(p_b(theta)) / D_b`` on average, is subtracted: least at the centre of
        the fitted points and growing towards their edges, it would otherwise pull the
        minimum towards the centre of the evaluations.
        """
        used = self._used
        predictions = self.predict(values)
        pred = used.flatten({n: p for n, (p, _) in predictions.items()})
        err = used.flatten({n: e for n, (_, e) in predictions.items()})
        v = self._den
        r = pred - used.data
        total = self._chi2_of({n: fit.coef for n, fit in self._fits.items()}, values,
                              wall=False)
        var = float(np.sum(used.weights**2 * 4.0 * r**2 * err**2 / v**2))
        return total, math.sqrt(var)

    def chi2_many(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`chi2` at many points at once: ``points`` (n, k) in the real parameters'
        units -> the chi2 values (n,) and their standard deviations (n,)."""
        used = self._used
        F = quadratic_features(self._u(np.asarray(points, dtype=float)))  # (n, p)
        pred = np.concatenate([F @ self._fits[n].coef[m].T for n, m in used.masks.items()],
                              axis=1)  # (n, B)
        var = np.concatenate([np.einsum("np,bpq,nq->nb", F, self._fits[n].cov[m], F)
                              for n, m in used.masks.items()], axis=1)
        r = pred - used.data
        a = used.weights / self._den
        total = r**2 @ a
        if self._gram is not None:
            total = total - np.einsum("np,pq,nq->n", F, self._noise_form, F)
        sd = np.sqrt(np.maximum(4.0 * (r**2 * np.maximum(var, 0.0)) @ a**2, 0.0))
        return total, sd

    def _draw_per_bin(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = {}
        for name, fit in self._fits.items():
            vals, vecs = np.linalg.eigh(fit.cov)  # (B, p), (B, p, p)
            # the symmetric square root: unlike vecs * sqrt(vals), it does not depend on the
            # signs LAPACK gives the eigenvectors, which differ between BLAS builds
            root = np.einsum("bpr,br,bqr->bpq", vecs, np.sqrt(np.maximum(vals, 0.0)), vecs)
            out[name] = fit.coef + np.einsum("bpq,bq->bp", root, rng.normal(size=fit.coef.shape))
        return out

    def uncertainty(self, errordef: float = 1.0,
                    start: Sequence[float] | np.ndarray | None = None, *,
                    n_replicas: int = N_REPLICAS, seed: int | None = 0,
                    mc_part: str = "replicas", replica_bounds: str = "box",
                    noise: float = 1.0) -> Uncertainty:
        """Minimise the chi2 of the fitted bins inside the fitted box.

        MIGRAD finds the minimum and Newton steps with the chi2's exact derivatives (a
        polynomial's) refine it, so that the result does not depend on MIGRAD's path.
        The covariance is the Hessian's (the data's errors; ``2 errordef H^-1``, as HESSE's
        but exact) plus the spread of the minima of
        ``n_replicas`` replicas of the fits (the MC noise of the fitted evaluations; 0 leaves
        it out): drawn from the fits' covariance, or for a debiased model refitted -- the
        directions included -- to the fitted bins plus new MC noise. The replicas' spread
        of the chi2 at the minimum is ``fun_std``. The curvature is that of the chi2
        without the box's limits or the leverage wall (so that a minimum on an edge keeps
        the errors its surroundings give; HESSE's with the limits where that curvature is
        not positive definite), and corrected for the fitted gradients' noise unless the
        model is debiased. When the reference is a simulation (closure pseudo-data), the
        Hessian's part also counts that its MC noise is correlated across bins
        (:meth:`_with_reference_mc`; debiased models, chi2 errordef 1).

        ``mc_part`` (debiased models with ``n_replicas > 1``) chooses the MC part:
        ``"replicas"``, the replicas' minima as above; since they are drawn about the fit,
        whose bins carry their own noise, their scatter also holds what that noise adds.
        ``"extrapolated"``: the covariance of the replicas' chi2 gradients at the minimum,
        extrapolated to a centre without noise and propagated linearly with the exact
        Hessian (:meth:`_gradient_covariances`); ``"corrected"``: the replicas' minima
        less the excess the extrapolation finds; ``"scaled"``: the replicas' minima times
        one factor, the share of the gradients' covariance that the extrapolation keeps,
        summed over the directions with the Hessian's weights (``tr(H^-1 (2 G1 - G2)) /
        tr(H^-1 G1)``, within [0, 1]); ``"geometric"``: that extrapolation made in the log
        of the variance, ``tr(H^-1 G1) / tr(H^-1 G2)``. Estimated from finitely many
        replicas, the extrapolation, the correction and the scaled factor can come out near
        zero where the excess is most of the spread; the geometric factor keeps half of it
        where the excess is all of it (``G2 = 2 G1``). All fall back to the replicas where
        the Hessian is not positive definite.

        ``replica_bounds`` bounds the replicas' minima: the fitted box, as the minimum
        (``"box"``), or, for a debiased model, only its leverage wall (``"wall"``). A
        minimum on a bound or on the box's edge at the end of a flat valley has replicas
        that would move beyond it piled up on the edge: their spread then says how the
        clipped estimate scatters, not how far the data allow it to be from the edge.
        Bounded only by where the fit is trusted, the replicas keep the spread that the
        surroundings of the minimum give, as the Hessian's part does.

        ``noise`` (a debiased model) is the share of the fits' own noise that the minimised
        chi2 subtracts, as in :meth:`minimum`: below 1 the estimate is that chi2's minimum and
        the covariance is its own. The Hessian's part is the sandwich ``2 errordef H_n^-1 H_1
        H_n^-1`` -- ``H_n`` the minimised chi2's curvature, which decides how far the minimum
        moves with the data, ``H_1`` the debiased chi2's, the data's information -- and the
        replicas subtract ``noise`` plus their own noise, so that each carries as much of the
        fits' noise as the estimate does. The reported chi2 (``fun``) is the debiased chi2 at
        the estimate either way.
        """
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be a number in [0, 1], got noise={noise!r}")
        if mc_part not in MC_PARTS:
            raise ValueError(f"mc_part must be one of {MC_PARTS}, got mc_part={mc_part!r}")
        if replica_bounds not in REPLICA_BOUNDS:
            raise ValueError(f"replica_bounds must be one of {REPLICA_BOUNDS}, got "
                             f"replica_bounds={replica_bounds!r}")
        lo, hi = self.box
        x0 = np.clip(self._centre if start is None else np.asarray(start, float), lo, hi)
        coef = {n: fit.coef for n, fit in self._fits.items()}

        noise = noise if self.debiased else 1.0
        limits = list(zip(lo, hi))
        m, best = self._minimised(coef, x0, limits, noise, errordef)
        rng = np.random.default_rng(seed)
        replica_limits = limits
        if replica_bounds == "wall" and self.debiased:  # the wall keeps them where trusted
            width = hi - lo
            replica_limits = list(zip(lo - width, hi + width))
        minima, at_best = self._replica_minima(best, replica_limits, errordef, rng,
                                               n_replicas, noise)
        extra = None
        if n_replicas > 1:
            extra = _covariance(minima)
            if mc_part != "replicas" and self.debiased:
                extra = self._mc_part(mc_part, extra, coef, best, rng, 4 * n_replicas, noise)
        fun_std = float(np.std(at_best, ddof=1)) if n_replicas > 1 else self.chi2(best)[1]
        hessian = self._exact_covariance(coef, best, errordef, noise)
        if hessian is not None and not self.debiased:
            corrected = self._debiased(hessian, best, errordef)
            hessian = hessian if corrected is None else corrected
        if hessian is None:  # not positive definite at the minimum: HESSE's, with the limits
            m.values = list(best)
            m.hesse()
            hessian = None if m.covariance is None else np.array(m.covariance)
        hessian = self._with_reference_mc(best, hessian)
        return uncertainty_from_minuit(m, self._fixed, limits, errordef, fun_std=fun_std,
                                       covariance_extra=extra, covariance_hessian=hessian,
                                       minimum=(best, self._chi2_of(coef, best)))

    def minimum(self, start: Sequence[float] | np.ndarray, noise: float = 1.0) -> np.ndarray:
        """The minimum inside the fitted box of the chi2 with ``noise`` times the fits' own
        noise subtracted (for a debiased model; 1 is its chi2, 0 the plain chi2 of its
        fits), searched from ``start`` by MIGRAD and refined by Newton steps."""
        lo, hi = self.box
        coef = {n: fit.coef for n, fit in self._fits.items()}
        x0 = np.clip(np.asarray(start, dtype=float), lo, hi)
        return self._minimised(coef, x0, list(zip(lo, hi)), noise)[1]

    def _minimised(self, coef: dict[str, np.ndarray], start: np.ndarray,
                   limits: list[tuple[float, float]], noise: float = 1.0,
                   errordef: float = 1.0) -> tuple[Minuit, np.ndarray]:
        """The minimum within ``limits`` of the walled chi2 of ``coef`` less ``noise`` times
        the fits' noise: MIGRAD's from ``start``, refined by Newton steps
        (:meth:`_polished`); and the Minuit object, for HESSE where the exact curvature is
        not positive definite."""
        m = minuit_fit(lambda *v: self._chi2_of(coef, v, noise=noise), self.names,
                       list(start), limits, errordef, hesse=False)
        return m, self._polished(coef, np.array(m.values), limits, noise)

    def _replica_minima(self, best: np.ndarray, limits: list[tuple[float, float]],
                        errordef: float, rng: np.random.Generator, n_replicas: int,
                        noise: float = 1.0) -> tuple[list[np.ndarray], list[float]]:
        """The minima of ``n_replicas`` replicas of the fits, started at ``best``, and each
        replica's chi2 at ``best``; a debiased model's replicas subtract ``noise`` of the
        fits' noise, as the estimate does."""
        minima, at_best = [], []
        # a debiased replica carries the fit's noise and its own (of ``replica_variance``):
        # its own and the estimate's share of the fit's are subtracted, so that the
        # replicas' minima scatter about this minimum
        subtract = noise + self.replica_variance if self.debiased else 1.0
        for _ in range(n_replicas):
            replica = self._draw(rng)
            at_best.append(self._chi2_of(replica, best))
            minima.append(self._minimised(replica, best, limits, subtract, errordef)[1])
        return minima, at_best

    def _mc_part(self, mc_part: str, spread: np.ndarray, coef: dict[str, np.ndarray],
                 best: np.ndarray, rng: np.random.Generator, n: int,
                 noise: float = 1.0) -> np.ndarray:
        """The MC part ``mc_part`` of the covariance (see :meth:`uncertainty`) from the
        replicas' minima's covariance ``spread`` and ``n`` replicas' chi2 gradients;
        ``spread`` itself where the Hessian is not positive definite."""
        parts = self._gradient_covariances(coef, best, rng, n, noise=noise)
        if parts is None:
            return spread
        g1, g2, inverse = parts
        if mc_part == "extrapolated":
            return inverse @ _positive_part(2.0 * g1 - g2) @ inverse.T
        if mc_part in ("scaled", "geometric"):  # one factor: sums with H^-1's weights
            weights = inverse / self._scale[:, None]  # H^-1
            t1, t2 = np.trace(weights @ g1), np.trace(weights @ g2)
            if mc_part == "scaled":
                kept = (2.0 * t1 - t2) / t1 if t1 > 0 else 0.0
            else:
                kept = t1 / t2 if t2 > 0 else 1.0
            return float(np.clip(kept, 0.0, 1.0)) * spread
        return _positive_part(spread - inverse @ (g2 - g1) @ inverse.T)

    def _gradient_covariances(self, coef: dict[str, np.ndarray], best: np.ndarray,
                              rng: np.random.Generator, n: int, per_centre: int = 8,
                              noise: float = 1.0
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The covariance of the replicas' chi2 gradients at ``best``: ``G1`` of ``n``
        replicas about the fit, ``G2`` of replicas about replicas (``per_centre`` about each
        of ``n / 4``), and the inverse exact Hessian in the parameters' units.

        A replica's gradient at the minimum carries products of the noise of the centre it is
        drawn about and its own; that part of its covariance grows in proportion to the
        centre's noise variance, so ``2 G1 - G2`` extrapolates to a centre without noise and
        ``G2 - G1`` is the excess the fit's own noise adds; propagated linearly as
        ``M G M.T`` with ``M`` the returned matrix. None when the Hessian is not positive
        definite or the model cannot draw about another centre."""
        draw_about = getattr(self._draw, "draw_about", None)
        hess = self._derivatives(coef, best, noise)[2]
        if draw_about is None or not np.all(np.linalg.eigvalsh(hess) > 0):
            return None
        one = noise + self.replica_variance
        centre = self._draw.centre()  # type: ignore[attr-defined]
        g1 = [self._derivatives(draw_about(rng, centre)[0], best, one)[1] for _ in range(n)]
        g2 = []
        for _ in range(max(n // 4, 2)):
            _, inner = draw_about(rng, centre)
            g2.append(_covariance([
                self._derivatives(draw_about(rng, inner)[0], best, one + self.replica_variance)[1]
                for _ in range(per_centre)]))
        inverse = self._scale[:, None] * np.linalg.inv(hess)
        return _covariance(g1), np.mean(g2, axis=0), inverse

    def _with_reference_mc(self, best: np.ndarray,
                           cov: np.ndarray | None) -> np.ndarray | None:
        """HESSE's covariance ``cov`` with the reference's MC noise taken as correlated.

        HESSE counts the reference's errors as independent bins. When the reference is a
        simulation (``reference_mc_errors`` of the objective), its MC noise is correlated
        across bins as a run's is, and the minimum moves by ``M G^T delta`` for a noise
        ``delta`` (``M`` = ``cov``, ``G`` = the bins' weighted gradients): this adds
        ``M G^T (S - diag e^2) G M``, with ``S`` the reference noise's covariance --
        its errors ``e`` with the correlation of the fitted runs' residuals
        (:func:`~bayestune.hep.binfits._noise_factor`). Unchanged when there is no such
        noise, no residuals or the sum would not be positive definite.
        """
        mc = self._used.mc_errors
        if cov is None or mc is None or self.noise_factor is None or not np.any(mc > 0):
            return cov
        jac = self.used_jacobian(best, np.diag(self._scale)) / self._scale  # (B, k)
        eg = (mc * self._used.weights / self._den)[:, None] * jac
        u = self.noise_factor @ eg
        out = cov + cov @ (u.T @ u - eg.T @ eg) @ cov
        return out if np.all(np.linalg.eigvalsh(out) > 0) else cov

    def _debiased(self, cov: np.ndarray | None, best: np.ndarray,
                  errordef: float) -> np.ndarray | None:
        """The covariance ``cov`` with the fitted gradients' noise taken out of the curvature.

        The chi2's Fisher matrix ``sum_b w_b J_b J_b^T / D_b`` built from noisy gradients
        ``J_b`` is too large on average by ``sum_b w_b Cov(J_b) / D_b`` (the gradients' noise
        adds to their squares): this subtracts that, so that a flat direction does not look
        curved. ``None`` (keep the uncorrected one) when the correction would leave no
        positive definite matrix.
        """
        if cov is None:
            return None
        used = self._used
        grad = feature_gradient(self._u(best)[0]) / self._scale[:, None]  # (k, p)
        # grad Cov(c_b) grad^T per bin, as two matrix products (a three-operand einsum
        # costs k^2 p^2 per bin: seconds for twenty parameters)
        noise = used.flatten({n: grad @ fit.cov @ grad.T
                              for n, fit in self._fits.items()})  # (B, k, k)
        bias = np.einsum("b,bkl->kl", used.weights / self._den, noise) / errordef
        inverse = inverse_in_units(cov, 1.0 / self._scale)
        if inverse is None:
            return None
        fisher = inverse - bias
        if not np.all(np.linalg.eigvalsh(fisher * np.outer(self._scale, self._scale)) > 0):
            return None
        return inverse_in_units(fisher, self._scale)


def _covariance(rows: Sequence[np.ndarray]) -> np.ndarray:
    """The covariance ``(k, k)`` of ``rows`` (n vectors of length k), also for k = 1."""
    table = np.asarray(rows, dtype=float)
    return np.cov(table.T).reshape(table.shape[1], table.shape[1])


def binwise_round_size(k: int) -> int:
    """Default evaluations per round of the local rounds for ``k`` real parameters: ``2 k``,
    at least 8 (each fit uses at least twice a quadratic's coefficients, taking the nearest
    earlier evaluations as well)."""
    return max(2 * k, 8)


def __getattr__(name: str) -> Any:
    # fit_binwise, which builds a BinwiseModel, lives in binwise_fit (it imports this
    # module); refine_binwise lives with the stages it runs (it imports them)
    if name == "fit_binwise":
        from .binwise_fit import fit_binwise
        return fit_binwise
    if name == "refine_binwise":
        from .tuning.local import refine_binwise
        return refine_binwise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
