"""Options of the Gaussian-process surrogate: one validated, frozen dataclass.

:class:`SurrogateConfig` is what users, campaign files and the pinned configurations of the
generator-tuning engines set; :mod:`bayestune.gp` builds and fits the GP from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .exceptions import BayestuneError

__all__ = ["SurrogateConfig", "KernelName"]

_KERNELS = ("matern52", "matern32", "rbf")
_TRENDS = (None, "quadratic")

KernelName = Literal["matern52", "matern32", "rbf"]


@dataclass(frozen=True)
class SurrogateConfig:
    """Options of the GP surrogate (validated on construction).

    Parameters
    ----------
    kernel : {"matern52", "matern32", "rbf"}
        Stationary kernel with one length scale per input column (ARD).
    warping : {None, "auto", "log", "chi2"}
        Output warping applied before standardisation (default: none). ``"log"`` suits
        heavy-tailed objectives: ``w(y) = ln(y - min(y) + c)`` with ``c`` a tenth of the
        distance between the smallest value and the median. ``"chi2"`` is ``w(y) = ln(y)`` for
        positive objectives with a natural zero (a chi2 of order ndf at its minimum): it keeps
        the resolution of the valley floor. ``"auto"`` fits both the
        identity and the log warping and keeps the one with the larger marginal likelihood
        of the data in the user's units (the GP evidence of ``w(y)`` times the Jacobian
        ``prod |w'(y_i)|``). With known per-point noise ``"auto"`` stays unwarped, because
        a warping maps the noise only approximately.
    noise : {"auto", "learned", "known", "fixed"}
        ``"known"`` uses the variances reported by the objective as per-point
        (heteroscedastic) noise; ``"learned"`` fits one noise variance; ``"fixed"`` uses a
        tiny jitter only (deterministic objectives). ``"auto"`` is ``"known"`` when every
        completed evaluation reported a variance, otherwise ``"learned"``.
    n_restarts : int
        Number of random restarts of the type-II maximum-likelihood fit, besides the start
        from default values (length scales 0.3, unit signal variance).
    lengthscale_bounds : (float, float)
        Bounds on the length scales in unit-cube coordinates.
    fully_bayesian : bool
        Sample the hyperparameters with emcee instead of fitting them; the acquisition is
        averaged over ``n_samples`` posterior samples.
    n_samples, mcmc_steps : int
        Number of hyperparameter samples kept, and MCMC steps per walker.
    trend : {"quadratic", None}
        ``"quadratic"`` (the default) adds a Bayesian quadratic trend to the stationary
        kernel: a constant, linear terms and all square and cross terms, each degree with its
        own variance, fitted with the other hyperparameters (a degree the data do not show
        shrinks to its floor). Near a minimum most objectives are a rotated, elongated bowl
        (a chi2 with correlated parameters such as the Lund a and b), which the trend
        describes with a handful of points while the stationary part models what is left. On
        the core benchmark it lowered the median final regret on Branin, Hartmann-6,
        Rosenbrock-4 and Levy-10 and left Levy-20 unchanged (``benchmarks/README.md``, "The
        quadratic trend"). On a noisy objective its search samples the minimum again and
        again; ``refine(delta="noise")`` then steps as far out as the surrogate is sure of
        itself. ``None``: the stationary kernel alone (the chi2 surrogates of the
        generator-tuning method, validated so).
    stall_log_ei : float or None
        With a trend and expected improvement (the search of a noise-free objective): when
        the best log expected improvement anywhere in the box is below this value (model
        units, standard deviations of the observations: -9.0 is an improvement of 1.2e-4 of
        them) and its best point lies on an edge of the box, the proposal comes from the
        stationary kernel alone, refitted to the same data. A fitted bowl whose minimum lies
        beyond an edge can rule out everything but the neighbourhood of one evaluated point
        on it, and the search then spends its budget on points a hair's breadth apart
        (Branin, seeds 210 and 219 of the core benchmark: regret 1.545 with 17 of 30
        evaluations within 2e-4 of the box's width of one point; with -9.0, 1.1e-5 and
        4.8e-4, the other 18 seeds unchanged). At a converged interior minimum it does not
        fire, and the trended model keeps refining (Hartmann-6: median regret in the global
        basin 1.1e-5, 9.5e-6 without the rule; ``benchmarks/README.md``, measured on the
        seeds it was designed on). ``None`` (the default): never.
    lengthscale_prior : bool
        Fit the hyperparameters by maximum a posteriori with the prior
        ``log p(l) = -0.1 (l^2 + l^-2)`` on each length scale (unit-cube units), which
        penalises both extremes (the heuristic prior of Optuna's GPSampler on the inverse
        squared length scales): with few points, ML length scales run to the bounds, and a
        dimension whose length scale hits the upper bound is ignored by the acquisition.
        ``False`` fits them by maximum likelihood within ``lengthscale_bounds``.
    lengthscale_prior_scale : float or "dimension"
        The length scale ``s`` at which that prior peaks: it becomes
        ``-0.1 ((l/s)^2 + (l/s)^-2)``. A number fixes it (``1.0``: Optuna's prior);
        ``"dimension"`` takes ``s = sqrt(d / 6)``, the root-mean-square distance between two
        random points of the d-dimensional unit cube, so that the prior says the same thing
        in any dimension -- a length scale far shorter or far longer than the typical
        distance between points is unlikely -- instead of pulling every length scale
        towards 1 however many dimensions share the box (equal to Optuna's at d = 6).
    noise_prior : (float, float) or None
        ``(shape, rate)`` of the Gamma prior density of a learned noise variance, in units of
        the standardised outputs; the fit maximises the posterior density of the variance
        itself. The default ``(1.1, 30)`` (mode 0.0033, mean 0.037; the prior of Optuna's
        GPSampler) lets the data show noise before variation is explained away as noise, which
        matters with few points on smooth or deterministic objectives. ``shape`` must be at
        least 1. ``None`` fits the noise by maximum likelihood.
    variance_prior : (float, float) or None
        ``(shape, rate)`` of a Gamma prior density on the stationary kernel's signal variance
        (standardised units; ``None``: none, within the bounds 0.01 to 100).
    max_fit_points : int or None
        With more observations than this, the hyperparameters are fitted to a subset of
        them -- the best half of it by value, the rest drawn at random -- and the posterior
        then conditions on all observations with those hyperparameters. The type-II
        maximum-likelihood fit costs a few dozen Cholesky decompositions of the whole kernel
        matrix per start, cubic in the observations: a thousand observations cost
        (1000 / 300)^3 = 37 times what 300 do, while the length scales change little
        (subset-of-data hyperparameter estimation). ``None`` fits them to all observations.
    prior_selection : {None, "loo"}
        ``"loo"`` fits the hyperparameters twice, with the priors above and without any
        (maximum likelihood within the bounds), and keeps the fit whose leave-one-out
        predictive log density of the observations is larger: the data decide whether the
        priors help. Costs a second fit. ``None`` always uses the priors.
    """

    kernel: KernelName = "matern52"
    warping: Literal[None, "log", "chi2", "auto"] = None
    noise: Literal["auto", "learned", "known", "fixed"] = "auto"
    n_restarts: int = 2
    lengthscale_bounds: tuple[float, float] = (1e-2, 20.0)
    fully_bayesian: bool = False
    n_samples: int = 12
    mcmc_steps: int = 150
    trend: Literal[None, "quadratic"] = "quadratic"
    stall_log_ei: float | None = None
    lengthscale_prior: bool = True
    lengthscale_prior_scale: float | Literal["dimension"] = 1.0
    noise_prior: tuple[float, float] | None = (1.1, 30.0)
    variance_prior: tuple[float, float] | None = None
    max_fit_points: int | None = 300
    prior_selection: Literal[None, "loo"] = None

    def __post_init__(self) -> None:
        if self.kernel not in _KERNELS:
            raise BayestuneError(
                f"kernel must be one of {sorted(_KERNELS)}, got kernel={self.kernel!r}"
            )
        if self.warping not in (None, "log", "chi2", "auto"):
            raise BayestuneError(
                f"warping must be None, 'log', 'chi2' or 'auto', got warping={self.warping!r}"
            )
        if self.noise not in ("auto", "learned", "known", "fixed"):
            raise BayestuneError(
                "noise must be 'auto', 'learned', 'known' or 'fixed', "
                f"got noise={self.noise!r}"
            )
        if not isinstance(self.n_restarts, int) or self.n_restarts < 0:
            raise BayestuneError(f"n_restarts must be an integer >= 0, got {self.n_restarts!r}")
        lo, hi = self.lengthscale_bounds
        if not 0 < lo < hi:
            raise BayestuneError(
                "lengthscale_bounds must satisfy 0 < low < high, "
                f"got lengthscale_bounds={self.lengthscale_bounds!r}"
            )
        scale = self.lengthscale_prior_scale
        if scale != "dimension" and (isinstance(scale, (bool, str)) or not (
                isinstance(scale, (int, float)) and 0.0 < scale < math.inf)):
            raise BayestuneError("lengthscale_prior_scale must be a positive number or "
                                 f"'dimension', got lengthscale_prior_scale={scale!r}")
        if self.prior_selection not in (None, "loo"):
            raise BayestuneError("prior_selection must be None or 'loo', got "
                                 f"prior_selection={self.prior_selection!r}")
        if self.trend not in _TRENDS:
            raise BayestuneError(f"trend must be None or 'quadratic', got trend={self.trend!r}")
        if self.stall_log_ei is not None and (
                isinstance(self.stall_log_ei, bool) or not isinstance(self.stall_log_ei,
                                                                      (int, float))
                or not math.isfinite(self.stall_log_ei)):
            raise BayestuneError("stall_log_ei must be a finite number or None, got "
                                 f"stall_log_ei={self.stall_log_ei!r}")
        if self.max_fit_points is not None and (
                isinstance(self.max_fit_points, bool) or not isinstance(self.max_fit_points, int)
                or self.max_fit_points < 10):
            raise BayestuneError("max_fit_points must be an integer >= 10 or None, got "
                                 f"max_fit_points={self.max_fit_points!r}")
        for name in ("noise_prior", "variance_prior"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                shape, rate = (float(v) for v in value)
            except (TypeError, ValueError):
                shape = rate = math.nan
            if not (shape >= 1.0 and rate > 0.0 and math.isfinite(shape + rate)):
                raise BayestuneError(f"{name} must be None or (shape, rate) with shape >= 1 "
                                     f"and rate > 0, got {name}={value!r}")
            object.__setattr__(self, name, (shape, rate))  # a TOML list becomes a pair
        for name in ("n_samples", "mcmc_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise BayestuneError(f"{name} must be a positive integer, got {value!r}")
