"""Acquisition functions: decide where to evaluate next, seeing only GP posteriors.

All acquisition functions here are *maximised* and are written for *minimisation* of the
objective. They work in the surrogate's model space (warped, standardised outputs).

With several hyperparameter samples (fully Bayesian surrogate) the acquisition is the
average over the samples; for functions computed in log space (EI, noisy EI, PI) the average
is taken of ``exp(value)`` (a log-mean-exp), so the result is still a log of an average
improvement or probability.

Notation: ``mu``, ``var`` posterior mean and variance of ``f``, ``sigma = sqrt(var)``,
``f*`` the incumbent (best value so far), ``u = (f* - mu) / sigma``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from scipy.special import erfcx, log_ndtr, logsumexp, ndtr

from .exceptions import BayestuneError
from .gp import Posterior

__all__ = [
    "AcquisitionFunction",
    "ExpectedImprovement",
    "NoisyExpectedImprovement",
    "ProbabilityOfImprovement",
    "LowerConfidenceBound",
    "ThompsonSampling",
    "log_h",
    "make_acquisition",
]

_C1 = 0.5 * math.log(2.0 * math.pi)
_C2 = 0.5 * math.log(0.5 * math.pi)
_SQRT2 = math.sqrt(2.0)
_U_ASYMPTOTIC = -1.0 / math.sqrt(np.finfo(float).eps)


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(x))`` for ``x < 0``, accurate on both sides of ``-ln 2``."""
    x = np.asarray(x, dtype=float)
    return np.where(x > -math.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def log_h(u: np.ndarray) -> np.ndarray:
    """``log(phi(u) + u Phi(u))`` computed without overflow or cancellation.

    ``h(u)`` is the expected improvement of a unit Gaussian over the threshold ``-u``, so
    ``EI = sigma * h((f* - mu) / sigma)``. For ``u <= -1`` the scaled complementary error
    function is used; below ``-1/sqrt(eps)`` the leading asymptotic term.

    Parameters
    ----------
    u : ndarray
        Any shape.
    """
    u = np.asarray(u, dtype=float)
    out = np.empty_like(u)
    upper = u > -1.0
    mid = (~upper) & (u > _U_ASYMPTOTIC)
    low = u <= _U_ASYMPTOTIC
    uu = u[upper]
    phi = np.exp(-0.5 * uu**2) / math.sqrt(2 * math.pi)
    out[upper] = np.log(phi + uu * ndtr(uu))
    um = u[mid]
    out[mid] = (-0.5 * um**2 - _C1
                + _log1mexp(np.log(erfcx(-um / _SQRT2) * np.abs(um)) + _C2))
    ul = u[low]
    out[low] = -0.5 * ul**2 - _C1 - 2.0 * np.log(np.abs(ul))
    return out


def _dlog_h(u: np.ndarray, logh: np.ndarray) -> np.ndarray:
    """``d log h / du = Phi(u) / h(u)``."""
    return np.exp(log_ndtr(u) - logh)


class AcquisitionFunction(ABC):
    """Base class: an acquisition is prepared once per proposal, then evaluated often.

    Subclasses implement :meth:`_single` for one posterior. :meth:`__call__` and
    :meth:`value_and_grad` average over the posteriors given to :meth:`prepare`.
    """

    #: whether values are logs of non-negative quantities (averaged by log-mean-exp)
    log_space: bool = False
    #: whether the optimiser may refine with gradients (False: evaluate on candidates only)
    has_gradient: bool = True
    name: str = "acquisition"

    def __init__(self) -> None:
        self._posteriors: list[Posterior] = []

    def prepare(self, posteriors: Sequence[Posterior], rng: np.random.Generator) -> None:
        """Bind the acquisition to the current posterior(s) (computes incumbents)."""
        if not posteriors:
            raise BayestuneError("an acquisition function needs at least one posterior")
        self._posteriors = list(posteriors)

    @abstractmethod
    def _single(
        self, k: int, post: Posterior, X: np.ndarray, grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Value ``(q,)`` and, if ``grad``, gradient ``(q, d)`` under posterior ``k``."""

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Acquisition values at ``X`` of shape ``(q, d)``; returns shape ``(q,)``."""
        return self._combine(np.atleast_2d(X), grad=False)[0]

    def value_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values ``(q,)`` and gradients ``(q, d)`` at ``X``."""
        value, grad = self._combine(np.atleast_2d(X), grad=True)
        assert grad is not None
        return value, grad

    def _combine(self, X: np.ndarray, grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if not self._posteriors:
            raise BayestuneError(f"{self.name}: call prepare(posteriors, rng) before evaluating")
        parts = [self._single(k, p, X, grad) for k, p in enumerate(self._posteriors)]
        values = np.array([v for v, _ in parts])  # (S, q)
        grads = np.array([g for _, g in parts]) if grad else None  # (S, q, d)
        if len(parts) == 1:
            return values[0], (grads[0] if grads is not None else None)
        if self.log_space:
            total = logsumexp(values, axis=0) - math.log(len(parts))
            if grads is None:
                return total, None
            weights = np.exp(values - total[None, :]) / len(parts)  # (S, q)
            return total, np.einsum("sq,sqd->qd", weights, grads)
        return values.mean(axis=0), (grads.mean(axis=0) if grads is not None else None)


def _sigma_and_grad(
    post: Posterior, X: np.ndarray, grad: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    if grad:
        mu, var, dmu, dvar = post.predict_with_grad(X)
        sigma = np.sqrt(var)
        return mu, sigma, dmu, dvar / (2.0 * sigma[:, None])
    mu, var = post.predict(X)
    return mu, np.sqrt(var), None, None


def _log_ei(
    mu: np.ndarray,
    sigma: np.ndarray,
    best: np.ndarray | float,
    dmu: np.ndarray | None,
    dsigma: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """log EI for minimisation; ``best`` broadcasts against ``mu``."""
    u = (best - mu) / sigma
    logh = log_h(u)
    value = np.log(sigma) + logh
    if dmu is None or dsigma is None:
        return value, None
    du = (-dmu - u[..., None] * dsigma) / sigma[..., None]
    g = dsigma / sigma[..., None] + _dlog_h(u, logh)[..., None] * du
    return value, g


class ExpectedImprovement(AcquisitionFunction):
    """Log expected improvement over the best observed value, ``log E[max(f* - f, 0)]``.

    Parameters
    ----------
    xi : float
        Exploration margin in model-space units (standard deviations of the data):
        improvement is measured over ``f* - xi``.
    """

    log_space = True
    name = "ei"

    def __init__(self, xi: float = 0.0) -> None:
        super().__init__()
        if not (math.isfinite(xi) and xi >= 0):
            raise BayestuneError(f"xi must be finite and >= 0, got xi={xi!r}")
        self.xi = float(xi)
        self._best: list[float] = []

    def prepare(self, posteriors: Sequence[Posterior], rng: np.random.Generator) -> None:
        super().prepare(posteriors, rng)
        self._best = [float(np.min(p.z_train)) - self.xi for p in self._posteriors]

    def _single(self, k, post, X, grad):  # type: ignore[no-untyped-def]
        mu, sigma, dmu, dsigma = _sigma_and_grad(post, X, grad)
        return _log_ei(mu, sigma, self._best[k], dmu, dsigma)


class NoisyExpectedImprovement(AcquisitionFunction):
    """Log expected improvement for noisy observations.

    The incumbent ``f*`` is not the luckiest observation but uncertain: ``n_samples`` joint
    posterior draws of the *latent* ``f`` at the evaluated points each give an incumbent
    ``min_i f_s(x_i)``; the EI is averaged over them. This integrates over the uncertainty of
    which evaluated point is best, in the spirit of Letham et al. (2019), while ignoring the
    correlation between ``f(x)`` and the incumbent draws. Without noise it reduces to EI.

    Parameters
    ----------
    n_samples : int
        Number of incumbent draws.
    """

    log_space = True
    name = "nei"

    def __init__(self, n_samples: int = 32) -> None:
        super().__init__()
        if not isinstance(n_samples, int) or n_samples < 1:
            raise BayestuneError(f"n_samples must be a positive integer, got {n_samples!r}")
        self.n_samples = n_samples
        self._best: list[np.ndarray] = []

    def prepare(self, posteriors: Sequence[Posterior], rng: np.random.Generator) -> None:
        super().prepare(posteriors, rng)
        self._best = []
        for p in self._posteriors:
            mean, cov = p.joint(p.X_train)
            draws = _mvn_draws(mean, cov, self.n_samples, rng)  # (S, n)
            self._best.append(draws.min(axis=1))

    def _single(self, k, post, X, grad):  # type: ignore[no-untyped-def]
        mu, sigma, dmu, dsigma = _sigma_and_grad(post, X, grad)
        best = self._best[k][:, None]  # (S, 1) against (q,)
        vals, grads = _log_ei(mu[None, :], sigma[None, :], best,
                              None if dmu is None else dmu[None],
                              None if dsigma is None else dsigma[None])
        total = logsumexp(vals, axis=0) - math.log(best.shape[0])
        if grads is None:
            return total, None
        weights = np.exp(vals - total[None, :]) / best.shape[0]
        return total, np.einsum("sq,sqd->qd", weights, grads)


class ProbabilityOfImprovement(AcquisitionFunction):
    """Log probability of improving on the best value by at least ``xi``: ``log Phi(u)``."""

    log_space = True
    name = "pi"

    def __init__(self, xi: float = 0.01) -> None:
        super().__init__()
        if not (math.isfinite(xi) and xi >= 0):
            raise BayestuneError(f"xi must be finite and >= 0, got xi={xi!r}")
        self.xi = float(xi)
        self._best: list[float] = []

    def prepare(self, posteriors: Sequence[Posterior], rng: np.random.Generator) -> None:
        super().prepare(posteriors, rng)
        self._best = [float(np.min(p.z_train)) - self.xi for p in self._posteriors]

    def _single(self, k, post, X, grad):  # type: ignore[no-untyped-def]
        mu, sigma, dmu, dsigma = _sigma_and_grad(post, X, grad)
        u = (self._best[k] - mu) / sigma
        value = log_ndtr(u)
        if dmu is None or dsigma is None:
            return value, None
        ratio = np.exp(-0.5 * u**2 - _C1 - value)  # phi(u) / Phi(u)
        du = (-dmu - u[:, None] * dsigma) / sigma[:, None]
        return value, ratio[:, None] * du


class LowerConfidenceBound(AcquisitionFunction):
    """Negative lower confidence bound, ``beta * sigma - mu`` (maximised).

    Parameters
    ----------
    beta : float
        Number of posterior standard deviations of optimism (> 0).
    """

    name = "lcb"

    def __init__(self, beta: float = 2.0) -> None:
        super().__init__()
        if not (math.isfinite(beta) and beta > 0):
            raise BayestuneError(f"beta must be finite and > 0, got beta={beta!r}")
        self.beta = float(beta)

    def _single(self, k, post, X, grad):  # type: ignore[no-untyped-def]
        mu, sigma, dmu, dsigma = _sigma_and_grad(post, X, grad)
        value = self.beta * sigma - mu
        if dmu is None or dsigma is None:
            return value, None
        return value, self.beta * dsigma - dmu


class ThompsonSampling(AcquisitionFunction):
    """Negative of one joint posterior sample path, evaluated on the candidate set.

    Gradient-free: the optimiser evaluates it once on its whole candidate set, and the
    sample is drawn jointly over exactly those points (one hyperparameter sample chosen at
    random for a fully Bayesian surrogate).
    """

    has_gradient = False
    name = "thompson"

    def prepare(self, posteriors: Sequence[Posterior], rng: np.random.Generator) -> None:
        super().prepare(posteriors, rng)
        self._rng = rng
        self._chosen = int(rng.integers(len(self._posteriors)))

    def _combine(self, X, grad):  # type: ignore[no-untyped-def]
        if grad:
            raise BayestuneError("Thompson sampling has no gradient")
        return self._single(self._chosen, self._posteriors[self._chosen], X, False)

    def _single(self, k, post, X, grad):  # type: ignore[no-untyped-def]
        mean, cov = post.joint(X)
        return -_mvn_draws(mean, cov, 1, self._rng)[0], None


def _mvn_draws(
    mean: np.ndarray, cov: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` draws of N(mean, cov), shape ``(n, q)``.

    Cholesky with growing jitter; an eigen-decomposition (clipping negative eigenvalues)
    if that still fails.
    """
    cov = 0.5 * (cov + cov.T)
    scale = max(float(np.mean(np.diag(cov))), 1e-300)
    root = None
    for jitter in (1e-10, 1e-8, 1e-6):
        try:
            root = np.linalg.cholesky(cov + jitter * scale * np.eye(len(cov)))
            break
        except np.linalg.LinAlgError:
            continue
    if root is None:
        vals, vecs = np.linalg.eigh(cov)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    return mean[None, :] + rng.standard_normal((n, mean.size)) @ root.T


_ACQUISITIONS: dict[str, type[AcquisitionFunction]] = {
    "ei": ExpectedImprovement,
    "nei": NoisyExpectedImprovement,
    "pi": ProbabilityOfImprovement,
    "lcb": LowerConfidenceBound,
    "thompson": ThompsonSampling,
}


ACQUISITIONS = tuple(_ACQUISITIONS)  # the names make_acquisition accepts


def make_acquisition(spec: str | AcquisitionFunction) -> AcquisitionFunction:
    """Resolve a user-facing name (``"ei"``, ``"nei"``, ``"pi"``, ``"lcb"``,
    ``"thompson"``) or pass an :class:`AcquisitionFunction` through."""
    if isinstance(spec, AcquisitionFunction):
        return spec
    if isinstance(spec, str) and spec.lower() in _ACQUISITIONS:
        return _ACQUISITIONS[spec.lower()]()
    raise BayestuneError(
        f"acquisition must be one of {sorted(_ACQUISITIONS)} or an AcquisitionFunction, "
        f"got acquisition={spec!r}"
    )
