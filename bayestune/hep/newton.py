"""Exact Newton refinement of a minimum of a polynomial chi2 inside limits.

The binwise chi2 (:mod:`bayestune.hep.binwise`) is a polynomial in the parameters, so its
gradient and Hessian are known exactly. MIGRAD stops anywhere within its tolerance of a
minimum, and where depends on its path, which the BLAS's round-off steers; Newton steps with
the exact derivatives end at the minimum itself. These are the steps' pieces: the derivatives
of a quadratic form in the features, a Newton step with an active set on the limits, the
Levenberg-Marquardt damping of a Hessian that is not positive definite, a backtracking step
that stays inside the limits, and an inverse taken in the units where it is well conditioned.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg

__all__ = ["NEWTON_STEPS", "damped_solve", "form_derivatives", "inverse_in_units",
           "newton_step", "step_inside", "with_form"]

#: Newton steps that refine a minimum after MIGRAD (a few converge; more when limits bind)
NEWTON_STEPS = 30


def form_derivatives(form: np.ndarray, feat: np.ndarray, dfeat: np.ndarray,
                      d2feat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of the quadratic form ``feat @ form @ feat`` in the features."""
    dq = 2.0 * dfeat @ form @ feat
    d2q = 2.0 * (dfeat @ form @ dfeat.T + np.einsum("p,pkl->kl", form @ feat, d2feat))
    return dq, d2q


def with_form(value: float, grad: np.ndarray, hess: np.ndarray, form: np.ndarray,
               feat: np.ndarray, dfeat: np.ndarray, d2feat: np.ndarray,
               factor: float) -> tuple[float, np.ndarray, np.ndarray]:
    """``value``, ``grad`` and ``hess`` plus ``factor`` times the form's value and derivatives."""
    dq, d2q = form_derivatives(form, feat, dfeat, d2feat)
    return (value + factor * float(feat @ form @ feat), grad + factor * dq,
            hess + factor * d2q)


def newton_step(grad: np.ndarray, hess: np.ndarray, at_lo: np.ndarray,
                 at_hi: np.ndarray) -> np.ndarray | None:
    """The Newton step with the parameters on a limit held there while the chi2 falls
    towards it or the step would push them beyond it (None without a usable Hessian)."""
    held = (at_lo & (grad > 0)) | (at_hi & (grad < 0))
    step = np.zeros_like(grad)
    for _ in range(grad.size):
        free = ~held
        step[:] = 0.0
        if not np.any(free):
            return step
        sub = damped_solve(hess[np.ix_(free, free)], grad[free])
        if sub is None:
            return None
        step[free] = -sub
        outward = free & ((at_lo & (step < 0)) | (at_hi & (step > 0)))
        if not np.any(outward):
            break
        held |= outward
    return step


def damped_solve(hess: np.ndarray, grad: np.ndarray) -> np.ndarray | None:
    """``H^-1 g``, with ``H`` damped towards its diagonal's mean (Levenberg-Marquardt, in
    fixed steps) where it is not positive definite; None when nothing helps."""
    size = float(np.mean(np.abs(np.diag(hess)))) if hess.size else 0.0
    for damping in (0.0, 1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4):
        try:
            factor = scipy.linalg.cho_factor(hess + damping * size * np.eye(len(grad)))
        except (np.linalg.LinAlgError, ValueError):
            continue
        return np.asarray(scipy.linalg.cho_solve(factor, grad))
    return None


def step_inside(x: np.ndarray, step: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 accept: Callable[[np.ndarray], bool]) -> np.ndarray | None:
    """``x + t step`` for the largest ``t`` (1, or where the step meets a limit, then halved)
    that ``accept`` takes; a step that stops on a limit puts that parameter on it exactly.
    None when no step is accepted."""
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(step > 0, (hi - x) / step, np.where(step < 0, (lo - x) / step, np.inf))
    t = min(1.0, float(np.min(room)))
    for halving in range(30):
        new = np.clip(x + t * step, lo, hi)
        if halving == 0 and t < 1.0:  # on the limit it meets
            hit = int(np.argmin(room))
            new[hit] = hi[hit] if step[hit] > 0 else lo[hit]
        if accept(new):
            return new
        t *= 0.5
    return None


def inverse_in_units(matrix: np.ndarray, units: np.ndarray) -> np.ndarray | None:
    """The inverse of ``matrix``, inverted as ``matrix * outer(units, units)`` (the
    parameters in ``units``: a Hessian times the fitted box's scale, a covariance over it),
    where its condition number is that of the problem, not of the parameters' units (their
    ranges differ a thousandfold); None when singular."""
    outer = np.outer(units, units)
    try:
        return np.asarray(np.linalg.inv(matrix * outer)) * outer
    except np.linalg.LinAlgError:
        return None
