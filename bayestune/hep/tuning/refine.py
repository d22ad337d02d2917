"""The local stages of a generator tune: rounds that walk to the minimum, the valley probe,
and the final debiased fit.

Each round evaluates ``n_per_round`` points in a region around the current estimate
(:mod:`.regions`): spread over its plausible part, where the fit that placed the region
predicts a chi2 near its lowest (``RefineStage.design="plausible"``, the default), or a Latin
hypercube of the whole region (``"region"``). The estimate after a round is the minimum of the
debiased fit of the rounds' evaluations in that round's region (at least twice a
quadratic's coefficients, the nearest ones): every evaluation is projected onto directions
taken from the others and from the earlier evaluations inside the rounds' design, so the
fits' own noise is known and subtracted from the chi2 -- a plain fit's minimum is pulled
towards the centre of its own points. The next region is centred on that minimum and
shaped by its covariance (kept between half and twice the previous region in every
direction). Until the debiased fit holds twice a quadratic's coefficients (four rounds of
eight for four parameters; fewer make its noise steer the walk), a plain bin-by-bin fit of
the region's evaluations places the next region: its fitted region doubles while its
minimum sits on the edge of its points, so it extrapolates. When the debiased
fit's minimum lies on the edge of its evaluations or on its leverage wall (beyond what its
design can predict: the walk has not reached the minimum), the next round is centred where
the way from the round's centre to that minimum meets the leverage wall -- a trust-region
step, as far as the fit is trusted -- in a region twice as large. The rounds spend their
share of the budget whole, and the last round's debiased fit is the estimate.

After any round whose fit (plain or debiased) shows a flat valley, or a minimum on or near
a bound, a probe may replace one round, once, with at least two more rounds left
(:class:`~bayestune.hep.tuning.options.ProbeStage`): a round goes along the valley
(:mod:`.probe`). The walk moves a region per round at most, and the explore stage may end at
the far end of a long valley; the probe sees the whole valley in one round. If the line's
chi2 is lower somewhere along it than at the estimate, the walk continues from that point;
at the end the lower of the two walks' final fits is the estimate, when the first walk had
reached a debiased fit (else the second walk's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.stats import chi2 as chi2_dist
from scipy.stats import qmc

from ...history import History, Trial
from ...quadratic import n_quadratic_terms, near_lowest
from ...space import Space
from ...uncertainty import Uncertainty
from ..binwise import N_REPLICAS, BinwiseModel
from ..binwise_fit import fit_binwise
from ..chi2 import HistogramObjective
from .budget import StageRecord
from .options import ProbeStage, RefineStage
from .probe import line_minimum, valley_line
from .regions import (
    PLAUSIBLE_CANDIDATES,
    coordinates,
    damped,
    fit_local,
    inside_box,
    inside_design,
    on_box_edge,
    plausible_design,
    real_dims,
    region_axes,
    start_region,
    stretched,
    trials_in_region,
    trusted_step,
)
from .runner import StageRunner

__all__ = ["LocalStages", "SETTLED_QUANTILE", "WALL_FRACTION", "min_rounds", "unsettled"]

_log = logging.getLogger(__name__)

#: a final minimum that moved from the last round's centre by more than this quantile of
#: Delta chi2 (for k parameters) under its own covariance has not settled
SETTLED_QUANTILE = 0.95
#: a final minimum this close to its design's leverage wall (a fraction of the largest
#: leverage of the fitted points) has not settled: the rounds stopped short of it
WALL_FRACTION = 0.95
#: rounds that must remain after a probe, to refit where it leads
_ROUNDS_AFTER_PROBE = 2
#: a debiased fit places the next round once it fits this many times a quadratic's
#: coefficients (the size of every local fit's selection, :func:`.regions.fit_local`)
_LEAD_FACTOR = 2


def min_rounds(k: int, n_round: int) -> int:
    """Rounds a debiased final fit needs: a quadratic's coefficients + 2 evaluations (three
    rounds of eight for four parameters, one for two)."""
    return -(-(n_quadratic_terms(k) + 2) // n_round)


@dataclass
class _Walk:
    """Where the rounds are: the next region, the last round's region and its fit."""

    centre: np.ndarray
    axes: np.ndarray
    last_centre: np.ndarray
    last_axes: np.ndarray
    #: where the last round's design was centred: ``last_centre`` moved inside the box
    last_design: np.ndarray | None = None
    model: BinwiseModel | None = None
    unc: Uncertainty | None = None
    #: the fit that placed the next region (its plausible part holds the next design)
    placed_by: BinwiseModel | None = None
    log: list[str] = field(default_factory=list)


class LocalStages:
    """Rounds, probe and final fit of one tune (see the module's description).

    ``trials`` are the evaluations made before (the explore stage's); the rounds' points are
    evaluated through ``runner`` under the labels ``"refine:<round>"`` and
    ``"probe:<round>"``.
    """

    def __init__(self, runner: StageRunner, space: Space, objective: HistogramObjective,
                 trials: list[Trial], refine: RefineStage, probe: ProbeStage,
                 seed: int) -> None:
        self.runner, self.space, self.objective = runner, space, objective
        self.refine, self.probe, self.seed = refine, probe, seed
        self.dims = real_dims(space)
        self.lo = np.array([float(d.low) for d in self.dims])
        self.hi = np.array([float(d.high) for d in self.dims])
        self.n_round = refine.round_size(len(self.dims))
        self.n_quad = n_quadratic_terms(len(self.dims))
        self.before = [t for t in trials if t.value is not None]
        self.local: list[Trial] = []  # the rounds' completed evaluations
        self.base = dict(min(self.before,
                             key=lambda t: float(t.value)).params)  # type: ignore[arg-type]
        self.records: list[StageRecord] = []
        #: the first walk's final fit and last region, kept when a probe moved the walk
        self._first_walk: tuple[BinwiseModel, Uncertainty, np.ndarray] | None = None

    # ------------------------------------------------------------------ the stages
    def run(self, rounds: int) -> tuple[BinwiseModel, Uncertainty, str | None]:
        """Spend ``rounds`` rounds (a probe takes one of them), then the final fit; returns
        its model, its uncertainty and why it has not settled (None when it has)."""
        centre, axes, start_fit = start_region(self.before, self.space, self.objective,
                                               self.refine.rank, self.refine.width,
                                               self.refine.max_extent)
        walk = _Walk(centre, axes, centre, axes, placed_by=start_fit)
        probed, walked = False, 0
        for r in range(1, rounds + 1):
            if self._may_probe(probed, walk, r, rounds) and self._probe(walk, r):
                probed = True
                continue
            self._round(walk, r)
            walked += 1
        if self.probe.enabled and not probed:
            self.records.append(StageRecord("probe", 0, "not needed: the valley rises "
                                            "within the rounds' reach"))
        self.records.append(StageRecord("refine", walked * self.n_round,
                                        "its share of the budget spent",
                                        {"rounds": walked, "centres": walk.log}))
        return self._final(walk)

    def _may_probe(self, probed: bool, walk: _Walk, r: int, rounds: int) -> bool:
        """A probe may follow any fitted round, once, with two rounds left after it (whether
        it runs depends on the fit's valley, :meth:`_probe`)."""
        return (self.probe.enabled and not probed and rounds - r >= _ROUNDS_AFTER_PROBE
                and walk.model is not None and walk.unc is not None)

    def _round(self, walk: _Walk, r: int) -> None:
        """One round of ``n_round`` points in the walk's region, then the next region."""
        design = inside_box(walk.centre, walk.axes, self.lo, self.hi)
        self._evaluate(f"refine:{r}", self._design(walk, design, r))
        walk.last_centre, walk.last_axes, walk.last_design = walk.centre, walk.axes, design
        model, unc = self._debiased(walk)
        placed_by = model
        if model is None or unc is None or model.n_points < _LEAD_FACTOR * self.n_quad:
            # too few round evaluations for the debiased fit to lead: the plain fit of the
            # region, which extrapolates beyond the evaluations, places the next round (a
            # debiased fit with a few more evaluations than coefficients is kept as the
            # estimate, but its noise would steer the walk)
            plain, plain_unc = fit_local(self.before + self.local, self.space, self.objective,
                                         self.refine.rank, design, walk.axes)
            centre = self._minimum(plain_unc)
            axes = self._next_axes(plain_unc, plain, walk.axes, design)
            how, placed_by = "plain fit", plain
            if model is None or unc is None:
                model, unc = plain, plain_unc
        elif self._on_wall(model, unc):
            # the minimum lies beyond what the design can predict: a trust-region step
            # towards it, as far as the design trusts the fit, and a region grown towards it
            target = self._minimum(unc)
            centre = trusted_step(model, design, target)
            axes = stretched(walk.axes, target - design, self.hi - self.lo,
                             self.refine.max_extent)
            how = "debiased fit, step to its leverage wall"
        else:
            centre = self._minimum(unc)
            axes = self._next_axes(unc, model, walk.axes, design)
            how = "debiased fit"
        walk.model, walk.unc, walk.centre, walk.axes = model, unc, centre, axes
        walk.placed_by = placed_by
        walk.log.append(f"round {r}: next centre {np.round(centre, 5).tolist()} ({how})")

    def _design(self, walk: _Walk, centre: np.ndarray, r: int) -> np.ndarray:
        """A round's points in the region ``centre + walk.axes @ [-1, 1]^k``
        (``refine.design``)."""
        rng = np.random.default_rng([self.seed, r])
        if self.refine.design == "region" or walk.placed_by is None:
            rows = qmc.LatinHypercube(d=len(self.dims), seed=rng).random(self.n_round)
            return centre + (2.0 * rows - 1.0) @ walk.axes.T
        done = self.before + self.local
        _, _, noise_sd = near_lowest(done)
        points, n_plausible = plausible_design(
            walk.placed_by, centre, walk.axes, self.n_round, coordinates(done, self.dims),
            noise_sd, self.refine.plausible_sd, self.lo, self.hi, rng)
        walk.log.append(f"round {r}: {n_plausible} of {PLAUSIBLE_CANDIDATES} candidates plausible")
        return points

    def _minimum(self, unc: Uncertainty) -> np.ndarray:
        return np.array([unc.x[d.name] for d in self.dims])

    def _on_wall(self, model: BinwiseModel, unc: Uncertainty) -> bool:
        """Whether a debiased fit's minimum lies on the edge of its evaluations or on its
        leverage wall (its true minimum is then beyond what it can predict)."""
        x = self._minimum(unc)
        return on_box_edge(unc, model) or \
            model.leverage(x) > WALL_FRACTION * model.max_leverage

    def _next_axes(self, unc: Uncertainty, model: BinwiseModel, axes: np.ndarray,
                   design: np.ndarray) -> np.ndarray:
        """The next round's half-axes: from the fit's covariance (``refine.width`` errors,
        kept between half and twice the last ones), or, when the minimum sits on the edge
        of the fitted points, the last ones grown towards it from the last round's centre
        ``design``."""
        span = self.hi - self.lo
        grown = stretched(axes, self._minimum(unc) - design, span, self.refine.max_extent)
        if on_box_edge(unc, model):  # no trustworthy covariance on the edge of the points
            return grown
        return region_axes(damped(unc.covariance, axes / self.refine.width), self.refine.width,
                           span, fallback=grown, max_extent=self.refine.max_extent)

    def _evaluate(self, label: str, points: np.ndarray) -> list[Trial]:
        rows = []
        for row in np.clip(points, self.lo, self.hi):
            point = dict(self.base)
            point.update({d.name: float(v) for d, v in zip(self.dims, row)})
            rows.append(point)
        trials = self.runner.run(label, rows)
        self.local.extend(t for t in trials if t.value is not None)
        return trials

    # ------------------------------------------------------------------ the probe
    def _probe(self, walk: _Walk, r: int) -> bool:
        """Probe along the valley of the last round's fit (plain or debiased) when it is
        flat (or from a bound); returns whether the round was spent on it."""
        model, unc = self._pooled(walk)
        if model is None or unc is None:
            return False
        line = valley_line(unc, self.dims, self.lo, self.hi, self.refine.max_extent,
                           self.probe)
        if line is None:
            return False
        origin, direction, (first, last), across = line
        steps = np.linspace(first, last, self.n_round)
        trials = self._evaluate(f"probe:{r}", origin + steps[:, None] * direction)
        found = line_minimum([t for t in trials if t.value is not None], self.dims, origin,
                             direction, model.used_jacobian(origin, across), self.objective,
                             degree=self.probe.line_degree)
        details: dict[str, Any] = {"origin": origin.tolist(), "direction": direction.tolist()}
        outcome = "the line's chi2 could not be fitted; the walk goes on"
        if found is not None:
            step, shift, gain, gain_sd = found
            target = np.clip(origin + step * direction + across @ shift, self.lo, self.hi)
            details.update(step=step, gain=gain, gain_sd=gain_sd, target=target.tolist())
            if gain > max(self.probe.min_gain_sd * gain_sd, 0.0):
                self._first_walk = (model, unc, walk.last_centre)
                walk.centre, walk.placed_by = target, model
                outcome = (f"lower by {gain:.1f} +- {gain_sd:.1f} at {step:+.2f} of the "
                           "ranges along the line: the walk moves there")
            else:
                outcome = (f"no lower chi2 along the line (gain {gain:.1f} +- "
                           f"{gain_sd:.1f}); the walk goes on")
        _log.info("probe: %s", outcome)
        self.records.append(StageRecord("probe", self.n_round, outcome, details))
        return True

    # ------------------------------------------------------------------ the final fit
    def _debiased(self, walk: _Walk, scale: float = 1.0,
                  noise_factor: np.ndarray | None = None, replicas: bool = True
                  ) -> tuple[BinwiseModel | None, Uncertainty | None]:
        """The debiased fit of the rounds' evaluations in the last round's region, its axes
        scaled by ``scale``, with the MC noise model ``noise_factor`` (default: from its own
        residuals; None when there are too few evaluations for it). Without ``replicas``
        its uncertainty leaves out the MC part (its minimum and chi2 are the same)."""
        local = [t for t in self.local if "bins" in t.info]
        if len(local) < self.n_quad + 2:
            return None, None
        design = walk.last_centre if walk.last_design is None else walk.last_design
        local = trials_in_region(local, self.dims, design, scale * walk.last_axes,
                                 _LEAD_FACTOR * self.n_quad)
        before = [t for t in self.before if "bins" in t.info]
        basis = inside_design(before, local, self.dims)
        model = fit_binwise(History([]), self.space, self.objective, trials=local, basis=basis,
                            replica_noise=self.refine.replica_noise, noise_factor=noise_factor)
        no_mc: dict[str, Any] = {} if replicas else {"n_replicas": 0}
        unc = model.uncertainty(start=design, noise=self.refine.walk_noise, **no_mc)
        _log.info("debiased fit of %d round evaluations (basis: %d earlier ones, lack of fit "
                  "%.2f): minimum %s", len(local), len(basis), model.lack_of_fit,
                  [round(unc.x[n], 5) for n in unc.names])
        return model, unc

    def _pooled(self, walk: _Walk, replicas: bool = True
                ) -> tuple[BinwiseModel | None, Uncertainty | None]:
        """The last round's fit; when it is debiased, refitted to the rounds' evaluations
        inside its region scaled by ``refine.final_scale`` (its uncertainty without the MC
        part unless ``replicas``). The MC noise's correlation across
        the bins is the last round's fit's: estimated from residuals, it would carry the
        quadratics' misfit over the wider region, a pattern shared by the bins along their
        response to the parameters, which inflates the replicas."""
        model, unc = walk.model, walk.unc
        if self.refine.final_scale == 1.0 or model is None or not model.debiased:
            return model, unc
        pooled, pooled_unc = self._debiased(walk, self.refine.final_scale, model.noise_factor,
                                            replicas)
        return (model, unc) if pooled is None else (pooled, pooled_unc)

    def _final(self, walk: _Walk) -> tuple[BinwiseModel, Uncertainty, str | None]:
        # with other options than the walk's fits (their noise share, the default MC part,
        # bounds and number of replicas), the estimate is redone below: the pooled fit's
        # minimum and chi2 (which choose between two walks) then need no replicas
        redo = (self.refine.mc_part != "replicas" or self.refine.replica_bounds != "box"
                or self.refine.final_noise != self.refine.walk_noise
                or self.refine.final_replicas != N_REPLICAS)
        model, unc = self._pooled(walk, replicas=not redo)
        if model is None or unc is None or not model.debiased:
            assert model is not None and unc is not None
            self.records.append(StageRecord(
                "final-fit", 0, "too few round evaluations for a debiased fit: the last "
                "round's fit is the estimate"))
            return model, unc, "too few round evaluations for the final fit"
        last_centre, chosen = walk.last_centre, "the walk's final fit"
        if self._first_walk is not None:
            # the probe moved the walk on a noisy line: the two walks' final fits decide
            first_model, first_unc, first_centre = self._first_walk
            if not first_model.debiased:
                chosen = "the second walk's final fit (the first walk had no debiased fit)"
            elif first_unc.fun < unc.fun:
                model, unc, last_centre = first_model, first_unc, first_centre
                chosen = "the first walk's final fit (lower than the second walk's)"
            else:
                chosen = "the second walk's final fit (lower than the first walk's)"
        if redo:
            # the final estimate and covariance, redone with the report's options
            unc = model.uncertainty(start=self._minimum(unc), mc_part=self.refine.mc_part,
                                    n_replicas=self.refine.final_replicas,
                                    replica_bounds=self.refine.replica_bounds,
                                    noise=self.refine.final_noise)
        x = np.array([unc.x[d.name] for d in self.dims])
        why = unsettled(unc, model, x, last_centre)
        details = {"n_fitted": model.n_points, "lack_of_fit": model.lack_of_fit,
                   "chi2": unc.fun, "minimum": x.tolist()}
        stepped = False
        if why is not None and last_centre is walk.last_centre:
            # the budget ended while the walk still moved: the minimum may lie a step
            # further (from the last round's centre to where the next round would go)
            step = walk.centre - walk.last_centre
            details["last_step"] = step.tolist()
            if self.refine.unsettled_step:
                unc = with_extra_covariance(unc, np.outer(step, step))
                stepped = True
        self.records.append(StageRecord(
            "final-fit", 0, (f"{chosen}: settled" if why is None
                             else f"{chosen}: not settled, the minimum {why}"
                             + ("; its covariance includes the walk's last step"
                                if stepped else "")), details))
        return model, unc, why


def with_extra_covariance(unc: Uncertainty, extra: np.ndarray) -> Uncertainty:
    """``unc`` with ``extra`` added to its covariance (and to its surrogate part)."""
    cov = np.asarray(unc.covariance, dtype=float) + extra
    errors = dict(unc.errors)
    errors.update({n: float(np.sqrt(max(cov[i, i], 0.0))) for i, n in enumerate(unc.names)})
    part = 0.0 if unc.covariance_surrogate is None else np.asarray(unc.covariance_surrogate)
    return replace(unc, covariance=cov, errors=errors, covariance_surrogate=part + extra)


def unsettled(unc: Uncertainty, model: BinwiseModel, x: np.ndarray,
              last_centre: np.ndarray) -> str | None:
    """Why the rounds have not settled on the debiased minimum ``x`` (None when they have):
    it lies on the edge of the rounds' evaluations or on the fit's leverage wall (the rounds
    stopped short of the minimum along a valley), or it moved from the last round's centre
    ``last_centre`` by more than the :data:`SETTLED_QUANTILE` of Delta chi2 under its own
    covariance (the walk was still going)."""
    if on_box_edge(unc, model):
        return "is on the edge of the rounds' evaluations"
    wall = model.leverage(x) / model.max_leverage
    if wall > WALL_FRACTION:
        return f"is on the fit's leverage wall ({wall:.2f} of the design's largest)"
    step = x - last_centre
    cov = np.asarray(unc.covariance, dtype=float)
    if np.all(np.isfinite(cov)):
        moved = float(step @ np.linalg.pinv(cov) @ step)
        if moved > chi2_dist.ppf(SETTLED_QUANTILE, len(x)):
            return (f"moved by Delta chi2 = {moved:.1f} from the last round's centre "
                    f"{np.round(last_centre, 5).tolist()}")
    return None

