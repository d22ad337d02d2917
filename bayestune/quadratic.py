"""A local quadratic fit of a noisy objective around its minimum (a response surface).

Near its minimum a chi2 of histograms that depend smoothly on the parameters is close to a
quadratic. Each evaluation of a chi2 from finite Monte Carlo statistics is noisy: it
fluctuates by about ``sqrt(2 n_bins)`` or more, far above ``Delta chi2 = 1``. A GP fitted to
the whole campaign sees that noise next to walls thousands of units high, and its mean near the
minimum is shaped as much by its prior as by the data. A weighted least-squares quadratic over
the evaluations near the minimum averages the noise instead, and the covariance of its
coefficients says how well the minimum is located.

Symbols (``k`` real parameters, ``p = 1 + k + k (k + 1) / 2`` coefficients)::

    f(x) = beta . phi(u),  u = (x - c) / s          phi = (1, u_i, u_i u_j for i <= j)
    H    = d^2 f / dx^2                             (k, k), constant
    x*   = argmin f,  grad f(x*) = G(x*) beta = 0   G = d phi / dx, shape (k, p)
    Cov(x*) = H^-1 G(x*) Cov(beta) G(x*)^T H^-1     (delta method)

:func:`fit_quadratic` fits the model to trials; :class:`QuadraticSurface` is the fitted
surface (a :class:`~bayestune.surface.Surface`, so profiles, eigentunes and posterior sampling
work on it). ``estimate_uncertainty(result, surface="quadratic")`` minimises it and adds
``Cov(x*)`` to the Hessian covariance.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .exceptions import BayestuneError
from .history import Trial
from .surface import Surface

__all__ = ["QuadraticSurface", "fit_quadratic", "quadratic_features", "n_quadratic_terms"]


#: Width, in noise standard deviations, of the band above the lowest value whose evaluations
#: count as "near the minimum" (the quadratic's window, refine's cloud).
NOISE_WINDOW = 10.0


def lowest_noise_sd(variances: Sequence[float | None], n: int = 10) -> tuple[float, bool]:
    """Median noise sd of the first ``n`` entries (evaluations sorted by value) that have a
    positive variance (0.0 if none), and whether all ``n`` had one."""
    first = list(variances[:n])
    known = [float(v) for v in first if v is not None and np.isfinite(v) and v > 0]
    sd = float(np.median(np.sqrt(known))) if known else 0.0
    return sd, bool(first) and len(known) == len(first)


def near_lowest(trials: Sequence[Trial]) -> tuple[list[Trial], list[Trial], float]:
    """The finished trials sorted by value, those within ``NOISE_WINDOW`` noise sd of the
    lowest (the sd as in :func:`lowest_noise_sd`), and that sd."""
    done = sorted((t for t in trials if t.value is not None),
                  key=lambda t: float(t.value))  # type: ignore[arg-type]
    if not done:
        return [], [], 0.0
    sd, _ = lowest_noise_sd([t.variance for t in done])
    low = float(done[0].value)  # type: ignore[arg-type]
    window = low + NOISE_WINDOW * sd
    return done, [t for t in done if float(t.value) <= window], sd  # type: ignore[arg-type]


def n_quadratic_terms(k: int) -> int:
    """Number of coefficients of a full quadratic in ``k`` variables."""
    return 1 + k + k * (k + 1) // 2


def _pairs(k: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(k) for j in range(i, k)]


def quadratic_features(u: np.ndarray) -> np.ndarray:
    """Features ``1, u_i, u_i u_j (i <= j)`` of centred coordinates ``u`` (n, k) -> (n, p)."""
    u = np.atleast_2d(np.asarray(u, dtype=float))
    n, k = u.shape
    first, second = np.triu_indices(k)  # the pairs i <= j, row by row, as _pairs
    return np.hstack([np.ones((n, 1)), u, u[:, first] * u[:, second]])


def feature_gradient(u: np.ndarray) -> np.ndarray:
    """``d phi / d u`` at one point ``u`` (k,), shape (k, p)."""
    k = u.size
    grad = np.zeros((k, n_quadratic_terms(k)))
    grad[:, 1:1 + k] = np.eye(k)
    for col, (i, j) in enumerate(_pairs(k), start=1 + k):
        grad[i, col] += u[j]
        grad[j, col] += u[i]
    return grad


def feature_hessian(k: int) -> np.ndarray:
    """``d^2 phi / du du`` of the quadratic features (constant), shape (p, k, k)."""
    hess = np.zeros((n_quadratic_terms(k), k, k))
    for col, (i, j) in enumerate(_pairs(k), start=1 + k):
        hess[col, i, j] += 1.0
        hess[col, j, i] += 1.0
    return hess


class QuadraticSurface(Surface):
    """A fitted quadratic ``f(x)`` over the real parameters, with its coefficient covariance.

    Parameters
    ----------
    names : list of str
        The real parameters, in column order of ``x``.
    centre, scale : ndarray, shape (k,)
        ``u = (x - centre) / scale``.
    coef : ndarray, shape (p,)
    coef_cov : ndarray, shape (p, p)
    n_points : int
        Evaluations in the fit.
    reduced_chi2 : float
        Weighted residual sum of squares per degree of freedom of the fit (about 1 when the
        evaluations' variances are right and the quadratic fits; ``coef_cov`` is scaled up by
        it when above 1).
    """

    def __init__(self, names: list[str], centre: np.ndarray, scale: np.ndarray,
                 coef: np.ndarray, coef_cov: np.ndarray, n_points: int,
                 reduced_chi2: float) -> None:
        self.names = list(names)
        self.centre = np.asarray(centre, dtype=float)
        self.scale = np.asarray(scale, dtype=float)
        self.coef = np.asarray(coef, dtype=float)
        self.coef_cov = np.asarray(coef_cov, dtype=float)
        self.n_points = int(n_points)
        self.reduced_chi2 = float(reduced_chi2)

    def _u(self, X: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(np.asarray(X, dtype=float)) - self.centre) / self.scale

    def values(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(quadratic_features(self._u(X)) @ self.coef)

    def std(self, X: np.ndarray) -> np.ndarray:
        """Standard deviation of the fitted ``f`` at ``X`` (n, k) from the coefficients."""
        phi = quadratic_features(self._u(X))
        return np.sqrt(np.maximum(np.einsum("np,pq,nq->n", phi, self.coef_cov, phi), 0.0))

    def gradient_design(self, x: np.ndarray) -> np.ndarray:
        """``G(x) = d phi / d x`` at one point, shape (k, p): ``grad f = G @ coef``."""
        u = self._u(x)[0]
        return feature_gradient(u) / self.scale[:, None]

    def hessian(self) -> np.ndarray:
        """``d^2 f / dx^2`` in physical units, shape (k, k)."""
        k = self.centre.size
        h = np.zeros((k, k))
        for col, (i, j) in enumerate(_pairs(k), start=1 + k):
            if i == j:
                h[i, i] = 2.0 * self.coef[col]
            else:
                h[i, j] = h[j, i] = self.coef[col]
        return h / np.outer(self.scale, self.scale)

    @property
    def positive_definite(self) -> bool:
        """The fitted quadratic has a minimum (all Hessian eigenvalues > 0)."""
        return bool(np.all(np.linalg.eigvalsh(self.hessian()) > 0))

    def location_covariance(self, x: np.ndarray) -> np.ndarray:
        """Covariance of the minimum's location from the coefficient covariance, (k, k).

        Delta method at the stationary point ``x``: ``H^-1 G Cov(beta) G^T H^-1``.
        """
        h_inv = np.linalg.pinv(self.hessian())
        g = self.gradient_design(np.asarray(x, dtype=float))
        jac = h_inv @ g
        cov = jac @ self.coef_cov @ jac.T
        return np.asarray(0.5 * (cov + cov.T))

    def rise_std(self, x: np.ndarray, covariance: np.ndarray) -> float:
        """Standard deviation of ``f(x + v) - f(x)`` at one sigma along ``covariance``'s
        eigenvectors (largest over the directions): whether the fit resolves the rise."""
        x = np.asarray(x, dtype=float)
        vals, vecs = np.linalg.eigh(np.asarray(covariance, dtype=float))
        phi0 = quadratic_features(self._u(x))[0]
        worst = 0.0
        for val, vec in zip(vals, vecs.T):
            for sign in (1.0, -1.0):
                d = quadratic_features(self._u(x + sign * np.sqrt(max(val, 0.0)) * vec))[0] - phi0
                worst = max(worst, float(d @ self.coef_cov @ d))
        return float(np.sqrt(worst))

    def replicas(self, n: int, rng: np.random.Generator) -> Iterator[Surface]:
        """Surfaces with coefficients drawn from their fitted Gaussian distribution."""
        draws = rng.multivariate_normal(self.coef, self.coef_cov, size=n, method="eigh")
        for coef in draws:
            yield QuadraticSurface(self.names, self.centre, self.scale, coef, self.coef_cov,
                                   self.n_points, self.reduced_chi2)

    def __repr__(self) -> str:
        return (f"QuadraticSurface({len(self.names)} parameters, {self.n_points} points, "
                f"reduced chi2 {self.reduced_chi2:.3g}, "
                f"positive definite {self.positive_definite})")


def fit_quadratic(
    trials: Sequence[Trial], names: Sequence[str], *, window: float | None = None,
    n_points: int | None = None,
) -> QuadraticSurface:
    """Weighted least-squares quadratic through the trials near the lowest one.

    Parameters
    ----------
    trials : sequence of Trial
        Completed trials; each must have every parameter in ``names`` (real values).
        Trials with a known ``variance`` are weighted by its inverse; without variances
        the residual scatter sets the errors (ordinary least squares).
    names : sequence of str
        The real parameters to fit in (the others should be constant over ``trials``).
    window : float, optional
        Fit the trials whose value lies within ``window`` of the lowest. Default, when the
        trials report variances: ten times the median standard deviation ``s`` of the ten
        lowest -- wide against the noise, so that the choice hardly depends on it, and wide
        enough for :func:`~bayestune.refine`'s points at a rise of ``3 s`` (the lowest noisy
        value sits about ``2 s`` below the true minimum); without variances, the
        ``n_points`` lowest trials.
    n_points : int, optional
        Fit this many trials instead of a window (default ``2 p``, at least ``p + 2``).

    Notes
    -----
    The first fit takes the trials by their values; while the fitted quadratic has a
    minimum, the next fit takes them by the *fitted* values (within the window, or the
    ``n_points`` lowest), until the choice settles: a far point whose noise made it look
    good is dropped, and the choice no longer follows the noise.

    Returns
    -------
    QuadraticSurface
    """
    names = list(names)
    k = len(names)
    if k == 0:
        raise BayestuneError("fit_quadratic needs at least one parameter name")
    p = n_quadratic_terms(k)
    usable = [t for t in trials if t.value is not None and np.isfinite(t.value)]
    if n_points is not None and (not isinstance(n_points, int) or n_points < p + 2):
        raise ValueError(f"n_points must be an integer >= {p + 2} (coefficients + 2) for "
                         f"{k} parameters, got n_points={n_points!r}")
    if window is not None and not (isinstance(window, (int, float)) and window > 0):
        raise ValueError(f"window must be > 0, got window={window!r}")
    if len(usable) < p + 2:
        raise BayestuneError(
            f"a quadratic in {k} parameters has {p} coefficients and needs at least {p + 2} "
            f"completed evaluations, got {len(usable)}"
        )
    X = np.array([[float(t.params[n]) for n in names] for t in usable])
    y = np.array([float(t.value) for t in usable])  # type: ignore[arg-type]
    var = np.array([np.nan if t.variance is None else float(t.variance) for t in usable])
    if window is None and n_points is None:
        sd, all_known = lowest_noise_sd(list(var[np.argsort(y)]))
        if all_known:
            window = NOISE_WINDOW * sd
    n_use = min(len(usable), n_points if n_points is not None else 2 * p)

    def choose(values: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        if window is None:
            return order[:n_use]
        inside = order[values[order] <= values[order[0]] + window]
        return inside if inside.size >= p + 2 else order[:p + 2]

    chosen = choose(y)
    fit = _wls_quadratic(names, X[chosen], y[chosen], var[chosen])
    for _ in range(_MAX_ITERATIONS):
        if not fit.positive_definite:
            break
        again = choose(fit.values(X))
        if set(again.tolist()) == set(chosen.tolist()):
            break
        chosen = again
        fit = _wls_quadratic(names, X[chosen], y[chosen], var[chosen])
    return fit


_MAX_ITERATIONS = 10


def _wls_quadratic(names: list[str], X: np.ndarray, y: np.ndarray,
                   var: np.ndarray) -> QuadraticSurface:
    n, p = len(y), n_quadratic_terms(len(names))
    known = bool(np.all(np.isfinite(var) & (var > 0)))
    w = 1.0 / var if known else np.ones(n)
    centre = X[np.argmin(y)].copy()  # features are small where the fit matters most
    scale = X.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    A = quadratic_features((X - centre) / scale)
    sw = np.sqrt(w)
    coef, _, rank, _ = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)
    if rank < p:
        raise BayestuneError(
            f"the {n} evaluations near the minimum do not determine a quadratic in "
            f"{len(names)} parameters (rank {rank} of {p} coefficients): they lie on a "
            f"lower-dimensional set; evaluate points around the minimum in every direction"
        )
    resid = y - A @ coef
    red = float(np.sum(w * resid**2)) / (n - p)
    cov = np.linalg.pinv((A.T * w) @ A)
    # known variances: widen for a poor fit only; unknown: the residual scatter sets them
    cov *= max(red, 1.0) if known else red
    return QuadraticSurface(names, centre, scale, coef, cov, n, red)
