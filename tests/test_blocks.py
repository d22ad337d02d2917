"""Block-by-block tuning (BlockTuning): the budget shared, held values, resume, validation."""

from __future__ import annotations

import numpy as np
import pytest

import bayestune as bt
from bayestune.closure import closure_test
from bayestune.hep import (
    BlockTuning,
    ExploreStage,
    GeneratorTuning,
    HistogramObjective,
    RefineStage,
    tune_blocks,
)
from bayestune.hep.histogram import Histogram
from bayestune.hep.tuning.blocks import split_budget
from bayestune.testfunctions import GaussianPeakSimulator

SPACE = bt.Space([bt.Real("mean", -1.0, 1.0), bt.Real("width", 0.5, 2.0),
                  bt.Real("mean2", -1.0, 1.0), bt.Real("width2", 0.5, 2.0)])
TRUTH = {"mean": 0.3, "width": 1.1, "mean2": -0.4, "width2": 0.8}
FAST = GeneratorTuning(explore=ExploreStage(runs=16, engine="gp"),
                       refine=RefineStage(n_per_round=8))
BLOCKS = BlockTuning((("mean", "width"), ("mean2", "width2")), method=FAST)


class TwoPeaks:
    """Two toy generators side by side: the first block of parameters makes ``shape`` and
    ``x2``, the second ``shape2`` and ``x2b`` (separable blocks); counts its calls."""

    def __init__(self, n_events=5_000, seed=0):
        self.n_events, self.seed = n_events, seed
        self.calls, self.points = 0, []

    def replicate(self, *, seed=None, n_events=None):
        return TwoPeaks(self.n_events if n_events is None else n_events,
                        self.seed if seed is None else seed)

    def __call__(self, params):
        self.calls += 1
        self.points.append(dict(params))
        one = GaussianPeakSimulator(self.n_events, self.seed)
        out = one({"mean": params["mean"], "width": params["width"]})
        two = one.replicate(seed=self.seed + 1)({"mean": params["mean2"],
                                                  "width": params["width2"]})
        for name, h in two.items():
            out[name + "2" if name == "shape" else "x2b"] = Histogram(
                h.name + "_2", h.lower, h.upper, h.values, h.errors)
        return out


def _objective(seed):
    sim = TwoPeaks(seed=seed)
    pseudo = sim.replicate(seed=10_000 + seed, n_events=20_000)(TRUTH)
    return HistogramObjective(sim, pseudo, keep_pulls=False, keep_bins=True), sim


def test_blocks_share_the_budget_hold_the_other_block_and_recover_the_truth(tmp_path):
    objective, sim = _objective(3)
    res = tune_blocks(objective, SPACE, 96, BLOCKS, seed=3, store=tmp_path / "tune.sqlite")
    assert sim.calls == res.n_runs == 96 == len(res.result.history)
    assert res.n_events == 96 * 5_000
    assert [(p, b, r.n_runs) for p, b, r in res.steps] == [(1, 1, 48), (1, 2, 48)]
    # the first block ran with the second at the centre of its ranges, the second with the
    # first at its estimate
    first, second = sim.points[:48], sim.points[48:]
    assert all(p["mean2"] == 0.0 and p["width2"] == 1.25 for p in first)
    estimate = res.steps[0][2].estimate
    assert all(p["mean"] == estimate["mean"] and p["width"] == estimate["width"]
               for p in second)
    assert all(set(t.params) == set(SPACE.names) for t in res.result.history)
    assert res.result.history[50].source.startswith("p1b2:")
    # separable blocks: the block tune is calibrated, and its covariance block-diagonal
    for name in SPACE.names:
        assert abs(res.estimate[name] - TRUTH[name]) < 3.5 * res.errors[name]
    assert np.all(res.uncertainty.covariance[:2, 2:] == 0.0)
    assert [s.stage for s in res.stages][0] == "p1b1:explore"
    assert "of a budget of 96, 480,000 events" in res.stage_log()
    # a rerun resumes from the blocks' stores: no new run, the same estimate
    again_objective, again = _objective(3)
    rerun = tune_blocks(again_objective, SPACE, 96, BLOCKS, seed=3,
                        store=tmp_path / "tune.sqlite")
    assert again.calls == 0
    for name in SPACE.names:
        assert rerun.estimate[name] == pytest.approx(res.estimate[name], rel=1e-6, abs=1e-9)


def test_block_tuning_is_a_closure_strategy():
    sim = TwoPeaks()
    res = closure_test(sim, SPACE, TRUTH, n_evals=96, method=BLOCKS, seed=4)
    assert res.tune.n_runs == 96 and set(res.pulls) == set(SPACE.names)


def test_split_budget_is_proportional_to_the_blocks_quadratics():
    method = GeneratorTuning()
    runs = split_budget(400, [2, 3, 5], 1, method)
    assert runs == [64, 108, 228] and sum(runs) == 400  # 6, 10 and 21 coefficients
    assert split_budget(400, [2, 3, 5], 2, method) == [32, 54, 113, 32, 54, 115]
    with pytest.raises(ValueError, match="n_evals=150 shared over 2 pass.*gives block 1 of "
                                         "pass 1 12 runs, too few"):
        split_budget(150, [2, 3, 5], 2, method)


def test_bad_blocks_are_refused_naming_the_value():
    with pytest.raises(ValueError, match=r"\['mean'\] are in more"):
        BlockTuning((("mean", "width"), ("mean",)))
    with pytest.raises(ValueError, match="non-empty"):
        BlockTuning((("mean",), ()))
    with pytest.raises(ValueError, match="passes=0"):
        BlockTuning((("mean",),), passes=0)
    with pytest.raises(ValueError, match="method must be a GeneratorTuning"):
        BlockTuning((("mean",),), method="joint")
    objective, _ = _objective(5)
    with pytest.raises(ValueError, match=r"missing \['mean2', 'width2'\]"):
        tune_blocks(objective, SPACE, 96, BlockTuning((("mean", "width"),), method=FAST))
    with pytest.raises(ValueError, match=r"unknown \['sigma'\]"):
        tune_blocks(objective, SPACE, 96, BlockTuning(
            (("mean", "width", "sigma"), ("mean2", "width2")), method=FAST))
    with pytest.raises(ValueError, match="n_evals=40 shared over 1 pass"):
        tune_blocks(objective, SPACE, 40, BLOCKS)


def test_the_blocks_of_1610_08328(lep_dir):
    from bayestune.hep import lep

    names = lep.iwy_parameters(lep_dir)
    blocks = lep.iwy_blocks(names, lep_dir)
    assert [len(b) for b in blocks] == [3, 6, 11] and sum(blocks, []) == names
    assert blocks[0][0] == "TimeShower:alphaSvalue" and "StringZ:bLund" in blocks[1]
    assert lep.iwy_blocks(["StringFlav:probStoUD", "TimeShower:pTmin"], lep_dir) == [
        ["TimeShower:pTmin"], ["StringFlav:probStoUD"]]
    with pytest.raises(KeyError, match="StringZ:aLund"):  # held fixed in 1610.08328
        lep.iwy_blocks(["StringZ:aLund"], lep_dir)
