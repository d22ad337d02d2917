"""Generator tuning to histograms inside a hard budget of generator runs.

The method in stages, one module each:

- :mod:`.options` -- :class:`GeneratorTuning` and its validated stage options;
- :mod:`.budget` -- the :class:`Budget` of generator runs and events, the
  :class:`StageRecord` log;
- :mod:`.runner` -- evaluations stored and found again by stage, round and slot;
- :mod:`.regions` -- the regions of the local rounds and their local fits;
- :mod:`.refine` -- the local rounds, the valley probe and the final debiased fit;
- :mod:`.probe` -- the valley line and the chi2 along it;
- :mod:`.method` -- :func:`tune_generator`, the entry point, and its result;
- :mod:`.blocks` -- :class:`BlockTuning`: the method block by block, as arXiv:1610.08328;
- :mod:`.local` -- :func:`~bayestune.hep.refine_binwise`, the local stages alone on an
  existing campaign.
"""

from .blocks import BlockTuneResult, BlockTuning, tune_blocks
from .budget import Budget, StageRecord
from .method import GeneratorTuneResult, plan_budget, tune_generator
from .options import ExploreStage, GeneratorTuning, ProbeStage, RefineStage

__all__ = ["BlockTuneResult", "BlockTuning", "Budget", "ExploreStage", "GeneratorTuneResult",
           "GeneratorTuning", "ProbeStage", "RefineStage", "StageRecord", "plan_budget",
           "tune_blocks", "tune_generator"]
