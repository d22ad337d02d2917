"""The result of a tuning campaign: recommendation, history, surrogate and diagnostics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .gp import GPSurrogate
from .history import History
from .space import Categorical, Interval, Space

__all__ = ["Result"]


@dataclass
class Result:
    """What :func:`bayestune.minimize` and :meth:`Tuner.result` return.

    Attributes
    ----------
    x : dict
        Recommended parameters (physical units). For a noisy objective this is the
        evaluated point with the lowest posterior mean, not the luckiest observation.
    fun : float
        Objective at ``x``: the observed value (deterministic objective) or the posterior
        mean (noisy objective).
    fun_std : float or None
        Posterior standard deviation of the objective at ``x`` (when a surrogate exists).
    history : History
        Every trial of the campaign, failed ones included.
    space : Space
    surrogate : GPSurrogate or None
        The surrogate fitted to all completed trials (``None`` for peer engines or fewer
        than two completed trials).
    noisy : bool
        Whether the objective was treated as noisy.
    success : bool
        At least one evaluation completed.
    at_limit : list of str
        Continuous/integer parameters of ``x`` lying on a bound of the space.
    message : str
        Human-readable summary of what happened.
    """

    x: dict[str, Any]
    fun: float
    history: History
    space: Space
    surrogate: GPSurrogate | None = None
    fun_std: float | None = None
    noisy: bool = False
    success: bool = True
    at_limit: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def n_evals(self) -> int:
        """Number of finished (complete or failed) evaluations."""
        return self.history.n_finished

    @property
    def n_failed(self) -> int:
        """Number of failed evaluations."""
        return len(self.history.failed)

    @property
    def lengthscales(self) -> dict[str, float | tuple[float, ...]]:
        """Learned ARD length scales per parameter in physical units.

        For a log-scale parameter the length is in ``ln(value)`` (a relative scale); for a
        categorical it is the tuple of one-hot column length scales.
        """
        if self.surrogate is None or not self.surrogate.is_fitted:
            return {}
        unit = self.surrogate.lengthscales
        out: dict[str, float | tuple[float, ...]] = {}
        for d in self.space:
            cols = unit[self.space.columns_of(d.name)]
            if isinstance(d, Categorical):
                out[d.name] = tuple(float(c) for c in cols)
            elif isinstance(d, Interval):
                out[d.name] = d.unit_to_physical_scale(float(cols[0]))
        return out

    def uncertainty(self, errordef: float = 1.0, **kwargs: Any) -> Any:
        """Hessian uncertainties from the surrogate: see :func:`bayestune.estimate_uncertainty`."""
        from .uncertainty import estimate_uncertainty

        return estimate_uncertainty(self, errordef, **kwargs)

    def __repr__(self) -> str:
        width = max(len(n) for n in self.space.names)
        lines = [
            f"Result({'success' if self.success else 'FAILED'}: {self.message})",
            f"  fun      = {self.fun:.6g}"
            + (f" +- {self.fun_std:.2g}" if self.fun_std is not None else "")
            + (" (posterior mean)" if self.noisy else ""),
            f"  n_evals  = {self.n_evals} ({self.n_failed} failed)",
        ]
        if self.at_limit:
            lines.append(f"  at_limit = {self.at_limit}")
        lines.append("  x:")
        for name, value in self.x.items():
            text = f"{value:.6g}" if isinstance(value, float) else repr(value)
            lines.append(f"    {name:<{width}} = {text}")
        return "\n".join(lines)


def parameters_at_limit(space: Space, x: dict[str, Any], rtol: float = 1e-6) -> list[str]:
    """Names of bounded parameters of ``x`` within ``rtol`` (relative to range) of a bound."""
    names = []
    for d in space:
        if isinstance(d, Interval):
            span = d.high - d.low  # type: ignore[attr-defined]
            v = float(x[d.name])
            if math.isclose(v, d.low, abs_tol=rtol * span) or math.isclose(  # type: ignore
                    v, d.high, abs_tol=rtol * span):  # type: ignore[attr-defined]
                names.append(d.name)
    return names
