"""bayestune: Gaussian-process Bayesian optimisation of expensive simulations."""

from .acqopt import AcqOptimizerConfig
from .acquisition import (
    ExpectedImprovement,
    LowerConfidenceBound,
    NoisyExpectedImprovement,
    ProbabilityOfImprovement,
    ThompsonSampling,
)
from .exceptions import (
    BayestuneError,
    BayestuneWarning,
    CampaignError,
    EngineError,
    NumericalWarning,
    ObjectiveError,
    SpaceError,
    StoreError,
    TrialStopped,
)
from .gp import GPSurrogate, SurrogateConfig
from .history import History, Trial
from .objective import Evaluation, Status
from .quadratic import QuadraticSurface, fit_quadratic
from .refinement import refine
from .result import Result
from .scans import PosteriorSamples, Profile
from .scheduler import ASHA, TrialHandle
from .space import Categorical, Integer, Real, Space
from .store import CampaignStore
from .trust_region import TrustRegionConfig
from .tuner import Tuner, minimize
from .uncertainty import Uncertainty, estimate_uncertainty

__version__ = "0.1.0"

__all__ = [
    "AcqOptimizerConfig", "BayestuneError", "BayestuneWarning", "CampaignError",
    "CampaignStore", "Categorical", "EngineError", "Evaluation", "ExpectedImprovement",
    "GPSurrogate", "History", "Integer", "LowerConfidenceBound", "NoisyExpectedImprovement",
    "NumericalWarning", "ObjectiveError", "ProbabilityOfImprovement", "Real", "Result", "Space",
    "SpaceError", "Status", "StoreError", "SurrogateConfig", "ThompsonSampling", "Trial",
    "Tuner", "Uncertainty", "estimate_uncertainty", "minimize", "refine", "Profile",
    "PosteriorSamples", "ASHA", "TrialHandle", "TrialStopped", "QuadraticSurface",
    "fit_quadratic", "TrustRegionConfig",
]
