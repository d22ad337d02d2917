"""Tune the parameters block by block, as arXiv:1610.08328 did: :class:`BlockTuning`.

Each block of parameters is tuned by the generator-tuning method
(:func:`~bayestune.hep.tuning.tune_generator`) with the other parameters held at their
current values -- the start point for blocks not tuned yet, the block's estimate for those
tuned -- and ``passes`` sweeps go through the blocks in order. The budget is shared between
the steps in proportion to the size of a quadratic in each block's parameters, what the
fits of its rounds need.

A block's errors are conditional on the other blocks' values: the estimate's covariance is
block-diagonal, with the last pass's covariance of each block, and carries neither the
correlations between blocks nor the shift a block's optimum makes when another block moves.
Whether that matters is measured by closure (``benchmarks/bench_closure_many.py --blocks``);
the joint tune of every parameter at once is the method's default.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...history import History, Trial
from ...quadratic import n_quadratic_terms
from ...result import Result
from ...space import Real, Space
from ...uncertainty import Uncertainty
from ..chi2 import HistogramObjective
from .budget import StageRecord
from .method import GeneratorTuneResult, TunedEstimate, plan_budget, tune_generator
from .options import GeneratorTuning
from .regions import real_dims

__all__ = ["BlockTuneResult", "BlockTuning", "tune_blocks"]


@dataclass(frozen=True)
class BlockTuning:
    """The generator-tuning method applied block by block (a tuning strategy, as
    :class:`~bayestune.hep.tuning.GeneratorTuning`, for :func:`~bayestune.closure_test` and
    campaigns).

    Attributes
    ----------
    blocks : sequence of sequences of str
        The parameter names of each block, tuned in this order; every real parameter of the
        space in exactly one block.
    method : GeneratorTuning
        The method each block is tuned with.
    passes : int
        Sweeps through the blocks (at least 1).
    start : dict, optional
        Values of the parameters before their block is first tuned (default: the centre of
        each range).
    """

    blocks: tuple[tuple[str, ...], ...]
    method: GeneratorTuning = field(default_factory=GeneratorTuning)
    passes: int = 1
    start: dict[str, float] | None = None

    #: the blocks are tuned bin by bin: the objective must keep the bins
    keep_bins = True

    def __post_init__(self) -> None:
        if isinstance(self.blocks, (str, bytes)) or not hasattr(self.blocks, "__iter__"):
            raise ValueError(f"blocks must be a sequence of sequences of parameter names, "
                             f"got blocks={self.blocks!r}")
        blocks = tuple(tuple(b) if not isinstance(b, str) else (b,) for b in self.blocks)
        if not blocks or any(not b for b in blocks):
            raise ValueError(f"blocks must be non-empty sequences of parameter names, got "
                             f"blocks={self.blocks!r}")
        names = [n for b in blocks for n in b]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"each parameter belongs to one block; {twice} are in more, "
                             f"blocks={self.blocks!r}")
        object.__setattr__(self, "blocks", blocks)
        if not isinstance(self.method, GeneratorTuning):
            raise ValueError(f"method must be a GeneratorTuning, got method={self.method!r}")
        if isinstance(self.passes, bool) or not isinstance(self.passes, int) or self.passes < 1:
            raise ValueError(f"passes must be an integer >= 1, got passes={self.passes!r}")
        if self.start is not None and not isinstance(self.start, dict):
            raise ValueError(f"start must be a dict of parameter values, got "
                             f"start={self.start!r}")

    def tune(self, objective: Any, space: Space, n_evals: int, *, seed: int, store: Any,
             callback: Any, tuner_options: dict[str, Any] | None) -> Any:
        """Run :func:`tune_blocks` (the strategy interface of :mod:`bayestune.strategies`)."""
        from ...strategies import TuneOutcome

        res = tune_blocks(objective, space, n_evals, self, seed=seed, store=store,
                          callback=callback, tuner_options=tuner_options)
        return TuneOutcome(res.result, res.uncertainty, res)


@dataclass
class BlockTuneResult(TunedEstimate):
    """What :func:`tune_blocks` did and found.

    Attributes
    ----------
    uncertainty : Uncertainty
        The estimate (every parameter) and the block-diagonal covariance of the last pass.
    steps : list of (pass, block, GeneratorTuneResult)
        Every block's tune, in order (passes and blocks counted from 1).
    budget : int
    n_runs : int
        Generator runs of all steps (never above ``budget``).
    n_events : int or None
    settled : bool
        Whether the last pass's tune of every block settled.
    result : Result
        Every trial of every step, with the held values filled in and the step in ``source``
        (``"p1b2:refine:3"``).
    """

    uncertainty: Uncertainty
    steps: list[tuple[int, int, GeneratorTuneResult]]
    budget: int
    n_runs: int
    n_events: int | None
    settled: bool
    result: Result

    @property
    def stages(self) -> list[StageRecord]:  # type: ignore[override]
        """Every step's stages, named ``p<pass>b<block>:<stage>``."""
        return [replace(s, stage=f"p{p}b{b}:{s.stage}")
                for p, b, res in self.steps for s in res.stages]


class _Held:
    """``simulate`` with the parameters outside a block held at fixed values."""

    def __init__(self, simulate: Callable[..., Any], held: dict[str, Any]) -> None:
        self.simulate, self.held = simulate, dict(held)
        n_events = getattr(simulate, "n_events", None)
        if n_events is not None:
            self.n_events = n_events

    def __call__(self, params: dict[str, Any]) -> Any:
        return self.simulate({**self.held, **params})


def split_budget(n_evals: int, sizes: list[int], passes: int,
                 method: GeneratorTuning) -> list[int]:
    """Runs of each step (``passes`` sweeps over blocks of ``sizes`` parameters): shares in
    proportion to each block's quadratic, the rounding's remainder to the last step; raises
    ValueError when a step's share is too small for the method."""
    weights = [n_quadratic_terms(k) for k in sizes] * passes
    total = sum(weights)
    runs = [int(math.floor(n_evals * w / total)) for w in weights]
    runs[-1] += n_evals - sum(runs)
    for step, (k, n) in enumerate(zip(sizes * passes, runs)):
        try:
            plan_budget(n, k, method)
        except ValueError as err:
            raise ValueError(
                f"n_evals={n_evals} shared over {passes} pass(es) of blocks of {sizes} "
                f"parameters gives block {step % len(sizes) + 1} of pass "
                f"{step // len(sizes) + 1} {n} runs, too few: {err}") from None
    return runs


def tune_blocks(
    objective: HistogramObjective,
    space: Space,
    n_evals: int,
    blocks: BlockTuning,
    *,
    seed: int = 0,
    store: str | Path | None = None,
    callback: Callable[[Trial], None] | None = None,
    tuner_options: dict[str, Any] | None = None,
) -> BlockTuneResult:
    """Tune ``space`` block by block inside ``n_evals`` generator runs (see the module).

    ``store`` (a path) keeps one store per step beside it (``NAME.p1b2.sqlite``), so that
    an interrupted tune resumes.
    """
    if not isinstance(blocks, BlockTuning):
        raise ValueError(f"blocks must be a BlockTuning, got blocks={blocks!r}")
    if store is not None and not isinstance(store, (str, Path)):
        raise ValueError(f"tune_blocks keeps one store per block: give store as a path, got "
                         f"store={store!r}")
    others = [d.name for d in space if not isinstance(d, Real)]
    if others:
        raise ValueError(f"tune_blocks tunes real parameters; {others} are not (hold them "
                         f"fixed in the simulator)")
    listed = [n for b in blocks.blocks for n in b]
    unknown = sorted(set(listed) - set(space.names))
    missing = [n for n in space.names if n not in listed]
    if unknown or missing:
        raise ValueError(f"the blocks must hold every parameter of the space once: "
                         f"{'unknown ' + str(unknown) if unknown else ''}"
                         f"{' ' if unknown and missing else ''}"
                         f"{'missing ' + str(missing) if missing else ''}")
    sizes = [len(b) for b in blocks.blocks]
    runs = split_budget(n_evals, sizes, blocks.passes, blocks.method)
    current = {d.name: 0.5 * (d.low + d.high) for d in real_dims(space)}
    if blocks.start is not None:
        bad = sorted(set(blocks.start) - set(space.names))
        if bad:
            raise ValueError(f"start names parameters not in the space: {bad}")
        current.update({n: float(v) for n, v in blocks.start.items()})
    steps: list[tuple[int, int, GeneratorTuneResult]] = []
    trials: list[Trial] = []
    for i, n_runs in enumerate(runs):
        p, b = divmod(i, len(sizes))
        names = blocks.blocks[b]
        held = {n: v for n, v in current.items() if n not in names}
        sub_objective = copy.copy(objective)
        sub_objective.simulate = _Held(objective.simulate, held)
        label = f"p{p + 1}b{b + 1}"
        res = tune_generator(
            sub_objective, Space([space[n] for n in names]), n_runs, method=blocks.method,
            seed=seed, store=_step_store(store, label), callback=callback,
            tuner_options=tuner_options)
        current.update({n: float(res.estimate[n]) for n in names})
        steps.append((p + 1, b + 1, res))
        trials += [replace(t, number=len(trials) + j, params={**held, **t.params},
                           source=f"{label}:{t.source}")
                   for j, t in enumerate(res.result.history)]
    last = steps[-len(sizes):]
    unc = _combined(space, current, last)
    events = [res.n_events for _, _, res in steps]
    n_events = None if None in events else sum(e for e in events if e is not None)
    result = Result(x=dict(current), fun=unc.fun, history=History(trials), space=space,
                    success=True, at_limit=list(unc.at_limit),
                    message=f"tuned in {len(steps)} steps of blocks {sizes}")
    return BlockTuneResult(
        uncertainty=unc, steps=steps, budget=n_evals,
        n_runs=sum(res.n_runs for _, _, res in steps),
        n_events=n_events,
        settled=all(res.settled for _, _, res in last), result=result)


def _step_store(store: str | Path | None, label: str) -> Path | None:
    if store is None:
        return None
    path = Path(store)
    return path.with_name(f"{path.stem}.{label}{path.suffix or '.sqlite'}")


def _combined(space: Space, x: dict[str, float],
              last: list[tuple[int, int, GeneratorTuneResult]]) -> Uncertainty:
    """The estimate with the block-diagonal covariance of each block's last tune."""
    names = space.names
    cov = np.zeros((len(names), len(names)))
    for _, _, res in last:
        unc = res.uncertainty
        idx = [names.index(n) for n in unc.names]
        cov[np.ix_(idx, idx)] = unc.covariance
    final = last[-1][2].uncertainty
    return Uncertainty(
        x=dict(x), errors={n: float(np.sqrt(cov[i, i])) for i, n in enumerate(names)},
        covariance=cov, names=list(names), fun=final.fun, fun_std=final.fun_std,
        errordef=final.errordef, valid=all(r.uncertainty.valid for _, _, r in last),
        hessian_positive_definite=all(r.uncertainty.hessian_positive_definite
                                      for _, _, r in last),
        at_limit=[n for _, _, r in last for n in r.uncertainty.at_limit],
        limits=[(d.low, d.high) for d in real_dims(space)])
