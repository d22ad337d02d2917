"""High-energy-physics tuning: histograms, reference data, chi2 objectives, Pythia 8.

Importing this package does not import Pythia; :mod:`bayestune.hep.pythia` does, on use.
"""

from .binwise import BinwiseModel
from .binwise_fit import fit_binwise
from .chi2 import Chi2, HistogramObjective, Weights, chi2
from .command import CommandError, CommandSimulator, read_params, write_params
from .histogram import Histogram, HistogramError, normalise_path
from .io import (
    YodaWarning,
    download_hepdata,
    read_csv,
    read_hepdata_yaml,
    read_histograms,
    read_json,
    read_yoda,
    write_json,
    write_yoda,
)
from .lep import (
    LEP1_SETTINGS,
    LEP_OBSERVABLES,
    OBSERVABLE_SETS,
    Observable,
    find_data_dir,
    load_reference,
    monash_parameters,
    observables,
)
from .sensitivity import Sensitivity, sensitivity
from .tunefiles import TuneFiles, read_cmnd, write_cmnd, write_tune
from .tuning import (
    BlockTuneResult,
    BlockTuning,
    ExploreStage,
    GeneratorTuneResult,
    GeneratorTuning,
    ProbeStage,
    RefineStage,
    StageRecord,
    tune_blocks,
    tune_generator,
)
from .tuning.local import refine_binwise

__all__ = [
    "BinwiseModel", "Chi2", "CommandError", "CommandSimulator", "read_params", "write_params",
    "ExploreStage", "GeneratorTuneResult", "GeneratorTuning",
    "ProbeStage", "RefineStage", "StageRecord", "tune_generator", "Histogram", "HistogramError",
    "HistogramObjective",
    "LEP1_SETTINGS", "LEP_OBSERVABLES", "OBSERVABLE_SETS", "Observable", "Weights", "chi2",
    "download_hepdata", "find_data_dir", "fit_binwise", "load_reference", "monash_parameters",
    "normalise_path", "observables", "read_csv", "read_hepdata_yaml", "read_histograms",
    "read_json", "read_yoda", "refine_binwise", "write_json", "write_yoda", "YodaWarning",
    "TuneFiles", "read_cmnd", "write_cmnd", "write_tune", "Sensitivity", "sensitivity",
    "BlockTuneResult", "BlockTuning", "tune_blocks",
]
