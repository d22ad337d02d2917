"""The options of a generator tune, one validated object per stage.

:class:`GeneratorTuning` is the method: an ``explore`` stage that searches the whole box
(:class:`ExploreStage`), local ``refine`` rounds fitted bin by bin that walk to the minimum
(:class:`RefineStage`), an optional ``probe`` along a flat valley (:class:`ProbeStage`), and
the final debiased fit of the rounds that gives the estimate and its covariance. Every
constant a stage uses is a field here, with its meaning and its validation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from ...engines import ENGINE_NAMES
from ...tuner import default_n_initial
from ..binwise import (
    MC_PARTS,
    N_REPLICAS,
    REPLICA_BOUNDS,
    REPLICA_NOISE,
    binwise_round_size,
)
from ..composite import COMPOSITE_ACQUISITIONS

__all__ = ["ExploreStage", "GeneratorTuning", "ProbeStage", "RefineStage"]

#: where a refine round's points go in its region (:class:`RefineStage`)
DESIGNS = ("region", "plausible")


def _number(name: str, value: Any, low: float, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and low <= value <= high):
        bounds = f"in [{low}, {high}]" if math.isfinite(high) else f">= {low}"
        raise ValueError(f"{name} must be a number {bounds}, got {name}={value!r}")


def _count(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {name}={value!r}")


@dataclass(frozen=True)
class ExploreStage:
    """The global search over the whole box that finds the region of the minimum.

    Attributes
    ----------
    fraction : float
        Share of the budget it gets (the rest, in whole rounds, goes to the local rounds;
        what does not fill a round comes back here).
    runs : int, optional
        Runs it gets, instead of a share (the same rounding).
    engine : str
        Engine of the search: ``"composite"`` (:class:`~bayestune.hep.composite.
        CompositeChi2Engine`: GP emulators of the bins, with ``acquisition``) or any engine
        of :class:`~bayestune.Tuner` (``"gp"``, ``"random"``...).
    acquisition : {"plausible", "ei"}
        How the composite engine picks the next run
        (:class:`~bayestune.hep.composite.CompositeChi2Engine`): the lowest chi2 of the
        emulated bins with the emulators' variance among the errors, or the expected
        improvement of the chi2 of draws of the bins. On Pythia closures whose truth lay
        along the aLund-bLund valley, the expected improvement vanished over the whole box
        after 32 runs and the stage ended at the far end of the valley from the truth.
    n_initial : int, optional
        Space-filling points before the engine takes over (default: ``initial_fraction``
        of the stage's runs).
    initial_fraction : float
        Share of the stage's runs in its space-filling design when ``n_initial`` is not
        given (at least the tuner's ``max(5, 2 k)``). The bin emulators of the composite
        engine need the design to see the valley: after a design of ``2 k`` points its
        expected improvement spent the rest of the stage within a few hundredths of the
        ranges around one point, often far along the valley from the minimum.
    events : int, optional
        Events per run of this stage (default: the simulator's own ``n_events``, as the
        local rounds). Fewer events for the runs that only find the region of the minimum
        lower a tune's total events; the simulator must offer ``replicate(n_events=...)``
        (as :class:`~bayestune.hep.pythia.PythiaSimulator` does). The bin fits weight every
        run by its own MC errors, so runs of both sizes enter them.
    """

    fraction: float = 0.4
    engine: str = "composite"
    n_initial: int | None = None
    runs: int | None = None
    initial_fraction: float = 0.5
    acquisition: str = "plausible"
    events: int | None = None

    def __post_init__(self) -> None:
        _number("explore.fraction", self.fraction, 0.05, 0.95)
        if self.events is not None:
            _count("explore.events", self.events, 1)
        if self.runs is not None:
            _count("explore.runs", self.runs, 2)
        if self.engine != "composite" and self.engine not in ENGINE_NAMES:
            raise ValueError(f"explore.engine must be 'composite' or one of "
                             f"{list(ENGINE_NAMES)}, got explore.engine={self.engine!r}")
        if self.n_initial is not None:
            _count("explore.n_initial", self.n_initial, 2)
        _number("explore.initial_fraction", self.initial_fraction, 0.0, 1.0)
        if self.acquisition not in COMPOSITE_ACQUISITIONS:
            raise ValueError(f"explore.acquisition must be one of "
                             f"{list(COMPOSITE_ACQUISITIONS)}, "
                             f"got explore.acquisition={self.acquisition!r}")

    def design_size(self, runs: int, k: int) -> int:
        """Space-filling points of a stage of ``runs`` runs over ``k`` parameters."""
        if self.n_initial is not None:
            return self.n_initial
        return min(runs, max(default_n_initial(k), round(self.initial_fraction * runs)))


@dataclass(frozen=True)
class RefineStage:
    """Local rounds around the current estimate, each fitted bin by bin.

    Attributes
    ----------
    n_per_round : int, optional
        Evaluations per round (default ``2 k``, at least 8).
    width : float
        Half-axes of a round's region in units of the current errors, along the
        covariance's eigenvectors (so that the rounds follow a valley).
    max_extent : float
        Largest half-axis of a region as a fraction of the parameter ranges: bins are
        quadratic only over a limited range, and wider regions bias the fits.
    rank : int, "auto" or None
        Reduced-rank fits of the bins (see :func:`~bayestune.hep.fit_binwise`).
    replica_noise : {"quoted", "residuals"}
        The MC noise of the final fit's replicas (the MC part of its covariance): drawn
        with the fitted runs' residuals' correlation and each bin's quoted MC error
        (``"quoted"``, the default: a polynomial's lack of fit is a bias of the fit, not
        noise of the runs) or with the covariance of the residuals (``"residuals"``: their
        size too, lack of fit included, which inflates the errors where the bins are not
        quadratic).
    mc_part : {"replicas", "extrapolated", "corrected", "scaled", "geometric"}
        The MC part of the final fit's covariance (the estimate's error from the fitted
        runs' MC noise; the rounds' fits, which place the next round, always use
        ``"replicas"``): the spread of the minima of replicas of the fit (``"replicas"``,
        the default; drawn about the fit, they also carry what the fit's own noise adds
        to their scatter, so the errors lean large); the replicas' chi2 gradients at the
        minimum, extrapolated to a centre without noise and propagated with the exact
        Hessian (``"extrapolated"``); the replicas' minima less the excess that
        extrapolation finds (``"corrected"``: along Pythia's aLund-bLund valley that excess
        is most of the spread, and the errors there too small); or the replicas' minima
        times the share of their spread that the extrapolation keeps, one factor for all
        directions (``"scaled"``), or that factor extrapolated in the logarithm of the
        variance, which keeps at least half of the spread (``"geometric"``). See
        :meth:`~bayestune.hep.BinwiseModel.uncertainty`.
    unsettled_step : bool
        Whether an unsettled estimate's covariance also carries the walk's last step (the
        move from the last round's centre to where the next round would have gone;
        default false).
    final_scale : float
        The final fit (and the probe's fit) takes the rounds' evaluations inside the last
        round's region with its axes scaled by this factor (at least 1; default 3, which
        takes nearly all of them); its MC noise's correlation across the bins is the last
        round's fit's. The bins are quadratic to within their MC noise over more than one
        round's region, and a fit over more of the rounds' runs depends less on where the
        last round happened to be placed (see ``docs/generator-tuning.md``, step 3).
    design : {"region", "plausible"}
        Where a round's points go in its region: a Latin hypercube of the whole region
        (``"region"``), or spread over its plausible part (``"plausible"``, the default):
        where the fit that placed the region predicts a chi2 within ``plausible_sd``
        standard deviations of its lowest value there (one run's chi2 noise and the fit's
        own error combined), each point as far as possible from the earlier evaluations
        (:func:`~bayestune.hep.tuning.regions.plausible_design`). A region long enough to
        span a valley is mostly wall, and points on the walls, where the chi2 is hundreds
        above the valley's floor, say little about where the floor is lowest.
    plausible_sd : float
        The plausible part's bound, in standard deviations (default 3).
    final_noise : float
        The share of the fits' own noise that the final estimate's chi2 subtracts (0 to 1):
        0 (the default) takes the minimum of the plain chi2 of the final fit, searched from
        the minimum of its debiased chi2, 1 that debiased minimum. The covariance is the
        estimate's own (:meth:`~bayestune.hep.BinwiseModel.uncertainty` with ``noise``: the
        sandwich of its curvature, and replicas that subtract the same share). The
        subtracted noise is largest where the fit's variance is, at its leverage wall, and
        where the chi2 is flat within that noise the debiased minimum goes there; the plain
        minimum is drawn towards the centre of the evaluations instead (measured in
        ``docs/generator-tuning.md``, step 3).
    walk_noise : float
        The share of the fits' own noise that the rounds' fits subtract when they place the
        next round (0 to 1; default 1, the debiased minimum). Where the chi2 is flat within
        that noise the debiased minimum lies on the fit's leverage wall, and the rounds
        step to it round after round; the plain minimum (0) is drawn towards the centre of
        the round's evaluations instead, a pull that vanishes where the rounds are centred
        on it.
    replica_bounds : {"box", "wall"}
        What bounds the minima of the final fit's replicas (its MC part): the box of the
        fitted points, as the estimate (``"box"``), or only the fit's leverage wall
        (``"wall"``, the default), so that an estimate on a bound at the end of a flat
        valley keeps the spread its surroundings give (see
        :meth:`~bayestune.hep.BinwiseModel.uncertainty`).
    final_replicas : int
        The number of replicas of the final fit whose minima make its MC part (default 40;
        each costs a refit and a minimisation). Their covariance is an estimate: its
        inverse, which the joint regions and the truth's Delta chi2 in a closure use, comes
        out too large by ``(n - 1) / (n - k - 2)`` on average for ``n`` replicas and ``k``
        parameters where the MC part dominates -- 1.2 for four parameters at 40 replicas,
        1.4 for ten, 2.2 for twenty.
    """

    #: options that only change the final fit's covariance, not which runs are made: a
    #: store may be resumed with other values of them
    REPORT_ONLY: ClassVar[tuple[str, ...]] = ("mc_part", "unsettled_step", "replica_bounds",
                                              "final_noise", "final_replicas")

    n_per_round: int | None = None
    width: float = 20.0
    max_extent: float = 0.2
    rank: int | str | None = "auto"
    replica_noise: str = "quoted"
    mc_part: str = "replicas"
    unsettled_step: bool = False
    final_scale: float = 3.0
    design: str = "plausible"
    plausible_sd: float = 3.0
    replica_bounds: str = "wall"
    final_noise: float = 0.0
    walk_noise: float = 1.0
    final_replicas: int = N_REPLICAS

    def __post_init__(self) -> None:
        if self.n_per_round is not None:
            _count("refine.n_per_round", self.n_per_round, 1)
        _number("refine.width", self.width, 1e-3)
        _number("refine.final_scale", self.final_scale, 1.0, 10.0)
        _number("refine.max_extent", self.max_extent, 0.01, 1.0)
        if not (self.rank is None or self.rank == "auto" or (
                isinstance(self.rank, int) and not isinstance(self.rank, bool)
                and self.rank >= 1)):
            raise ValueError(f"refine.rank must be a positive integer, 'auto' or None, got "
                             f"refine.rank={self.rank!r}")
        if self.replica_noise not in REPLICA_NOISE:
            raise ValueError(f"refine.replica_noise must be one of {REPLICA_NOISE}, got "
                             f"refine.replica_noise={self.replica_noise!r}")
        if self.mc_part not in MC_PARTS:
            raise ValueError(f"refine.mc_part must be one of {MC_PARTS}, got "
                             f"refine.mc_part={self.mc_part!r}")
        if self.design not in DESIGNS:
            raise ValueError(f"refine.design must be one of {DESIGNS}, got "
                             f"refine.design={self.design!r}")
        _number("refine.plausible_sd", self.plausible_sd, 0.5, 100.0)
        _number("refine.final_noise", self.final_noise, 0.0, 1.0)
        _number("refine.walk_noise", self.walk_noise, 0.0, 1.0)
        _count("refine.final_replicas", self.final_replicas, 2)
        if self.replica_bounds not in REPLICA_BOUNDS:
            raise ValueError(f"refine.replica_bounds must be one of {REPLICA_BOUNDS}, got "
                             f"refine.replica_bounds={self.replica_bounds!r}")
        if not isinstance(self.unsettled_step, bool):
            raise ValueError(f"refine.unsettled_step must be True or False, got "
                             f"refine.unsettled_step={self.unsettled_step!r}")

    def round_size(self, k: int) -> int:
        return self.n_per_round if self.n_per_round is not None else binwise_round_size(k)


@dataclass(frozen=True)
class ProbeStage:
    """One round along the valley through the estimate, after the first fitted round that
    shows a flat valley or a bound (see :mod:`.probe` and :mod:`.refine`).

    Attributes
    ----------
    enabled : bool
    flat_valley : float
        Off the bounds, probe only when the rounds' reach (``max_extent`` of the ranges)
        spans fewer than this many errors along the valley: a steeper valley would have to
        hide a lower minimum behind a high ridge, which the explore stage sees.
    near_bound : float
        An estimate within this many errors of a bound probes away from it.
    line_degree : int
        Degree of the polynomials of the bins along the line.
    min_gain_sd : float
        The walk moves to the line's minimum when the chi2 there is lower than at the
        estimate by more than this many standard deviations of that gain (default 0: any
        gain; eight runs resolve the line's chi2 only roughly, so the final fits of the two
        walks then decide which minimum is returned).
    """

    enabled: bool = True
    flat_valley: float = 10.0
    near_bound: float = 2.0
    line_degree: int = 3
    min_gain_sd: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"probe.enabled must be True or False, got "
                             f"probe.enabled={self.enabled!r}")
        _number("probe.flat_valley", self.flat_valley, 0.0)
        _number("probe.near_bound", self.near_bound, 0.0)
        _count("probe.line_degree", self.line_degree, 1)
        _number("probe.min_gain_sd", self.min_gain_sd, 0.0)


@dataclass(frozen=True)
class GeneratorTuning:
    """The generator-tuning method: explore, local rounds, probe, final fit.

    Build it from plain dictionaries (a campaign file's ``[method]`` table) with
    :meth:`from_dict`; :meth:`to_dict` gives them back (stored with a campaign, so that a
    resumed tune runs with the options that made it).
    """

    explore: ExploreStage = field(default_factory=ExploreStage)
    refine: RefineStage = field(default_factory=RefineStage)
    probe: ProbeStage = field(default_factory=ProbeStage)

    def __post_init__(self) -> None:
        for name, kind in (("explore", ExploreStage), ("refine", RefineStage),
                           ("probe", ProbeStage)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"{name} must be a {kind.__name__}, got "
                                 f"{name}={getattr(self, name)!r}")

    #: the local stages fit the bins: the objective must keep them
    keep_bins = True

    def tune(self, objective: Any, space: Any, n_evals: int, *, seed: int, store: Any,
             callback: Any, tuner_options: dict[str, Any] | None) -> Any:
        """Run :func:`~bayestune.hep.tuning.tune_generator` (the strategy interface of
        :mod:`bayestune.strategies`)."""
        from ...strategies import TuneOutcome
        from .method import tune_generator

        res = tune_generator(objective, space, n_evals, method=self, seed=seed, store=store,
                             callback=callback, tuner_options=tuner_options)
        return TuneOutcome(res.result, res.uncertainty, res)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> GeneratorTuning:
        kinds = {"explore": ExploreStage, "refine": RefineStage, "probe": ProbeStage}
        unknown = set(options) - set(kinds)
        if unknown:
            raise ValueError(f"unknown stage(s) {sorted(unknown)} of the generator-tuning "
                             f"method; the stages are {sorted(kinds)}")
        stages = {}
        for name, kind in kinds.items():
            given = dict(options.get(name) or {})
            known = {f.name for f in fields(kind)}
            bad = set(given) - known
            if bad:
                raise ValueError(f"unknown option(s) {sorted(bad)} of the {name} stage; "
                                 f"its options are {sorted(known)}")
            stages[name] = kind(**given)
        return cls(**stages)
