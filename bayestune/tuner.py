"""The ask/tell tuner and :func:`minimize`.

``Tuner.ask()`` proposes a point and records it as pending in the store; ``Tuner.tell()``
records its outcome. ``Tuner.run()`` is a short loop over the two. All randomness of trial
``k`` comes from ``numpy.random.default_rng([seed, k])``, so the same seed and the same
evaluation results give the same sequence of points, with or without interruptions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .acqopt import AcqOptimizerConfig
from .acquisition import AcquisitionFunction, make_acquisition
from .engines import Engine, GPEngine, MultiFidelityGPEngine, check_engine, make_engine
from .exceptions import BayestuneError, CampaignError
from .execution import ExecutionConfig, executor_workers, run_campaign
from .gp import GPSurrogate, SurrogateConfig
from .history import History, Trial
from .objective import Evaluation, Outcome, Status, as_outcome
from .result import Result, parameters_at_limit
from .scheduler import ASHA, wants_trial_handle
from .space import Dimension, Space
from .store import CampaignStore

__all__ = ["Tuner", "minimize"]

INITIAL_DESIGNS = ("sobol", "lhs", "random")
_DESIGN_STREAM = 0x5EED  # stream tag of the initial design's generator


def _as_space(space: Space | Sequence[Dimension]) -> Space:
    if isinstance(space, Space):
        return space
    if isinstance(space, Sequence):
        return Space(space)
    raise BayestuneError(f"space must be a Space or a list of parameters, got {space!r}")


def default_n_initial(n_params: int) -> int:
    """The tuner's default size of the space-filling design for ``n_params`` parameters:
    ``2 n_params``, at least 5 and at most 10.

    The GP's priors on its length scales and noise and its quadratic trend make its first
    fits well posed with a handful of points, and in many dimensions a design covers nothing
    anyway (40 points in 20): points beyond ten are better spent by the acquisition. Over
    the core benchmark's development seeds, a design of 10 instead of 2 d lowered the median
    final regret on Levy-20 from 7.3 to 2.1 and on Levy-10 from 2.5 to 1.6, with Hartmann-6
    level (``benchmarks/README.md``, "Fresh seeds and the initial design's size")."""
    return min(max(5, 2 * n_params), 10)


class Tuner:
    """Bayesian optimisation campaign with ask/tell primitives.

    Parameters
    ----------
    space : Space or list of Dimension
        The search space.
    objective : callable, optional
        ``objective(params: dict) -> float | Evaluation``; needed only by :meth:`run`.
    store : str or Path, optional
        SQLite file of the campaign. An existing file is resumed. ``None``: in memory.
    seed : int, optional
        Campaign seed (recorded in the store).
    engine : {"gp", "skopt", "gpyopt"} or Engine
        Proposal engine. ``"gp"`` is bayestune's; the others run the same campaign through
        scikit-optimize or GPyOpt for cross-checks.
    acquisition : {"auto", "ei", "nei", "pi", "lcb", "thompson"} or AcquisitionFunction
        ``"auto"`` is ``"nei"`` for noisy objectives, else ``"ei"``.
    n_initial : int, optional
        Size of the space-filling initial design (default ``2 * len(space)``, at least 5 and
        at most 10: :func:`default_n_initial`).
    initial_design : {"sobol", "lhs", "random"}
    noisy : bool, optional
        Treat the objective as noisy. Default: noisy when it reports variances.
    surrogate : SurrogateConfig, optional
        GP options (kernel, warping, noise model, fully Bayesian, ...).
    optimizer : AcqOptimizerConfig, optional
        Acquisition maximiser options.
    max_consecutive_failures : int
        :meth:`run` stops with :class:`CampaignError` after this many failures in a row.
    metadata : dict, optional
        Extra JSON-serialisable information recorded in a new store (e.g. the campaign
        file the command line ran).
    scheduler : ASHA, optional
        Early stopping of trials that report intermediate values (the objective then takes
        ``(params, trial)``, see :mod:`bayestune.scheduler`). With the ``"gp"`` engine the
        proposals come from :class:`~bayestune.engines.MultiFidelityGPEngine` (a GP over the
        configuration and the training budget, maximised at full budget); the
        recommendation compares trials at the highest budget that enough of them reached.
    """

    def __init__(
        self,
        space: Space | Sequence[Dimension],
        objective: Callable[[dict[str, Any]], float | Evaluation] | None = None,
        *,
        store: str | Path | None = None,
        seed: int | None = None,
        engine: str | Engine = "gp",
        acquisition: str | AcquisitionFunction = "auto",
        n_initial: int | None = None,
        initial_design: str = "sobol",
        noisy: bool | None = None,
        surrogate: SurrogateConfig | None = None,
        optimizer: AcqOptimizerConfig | None = None,
        max_consecutive_failures: int = 10,
        metadata: dict[str, Any] | None = None,
        scheduler: ASHA | None = None,
    ) -> None:
        self.space = _as_space(space)
        if objective is not None and not callable(objective):
            raise BayestuneError(f"objective must be callable, got objective={objective!r}")
        self.objective = objective
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise BayestuneError(f"seed must be a non-negative integer, got seed={seed!r}")
        if n_initial is None:
            n_initial = default_n_initial(len(self.space))
        if not isinstance(n_initial, (int, np.integer)) or n_initial < 2:
            raise BayestuneError(f"n_initial must be an integer >= 2, got n_initial={n_initial!r}")
        if initial_design not in INITIAL_DESIGNS:
            raise BayestuneError(
                "initial_design must be 'sobol', 'lhs' or 'random', "
                f"got initial_design={initial_design!r}"
            )
        # refuse a bad engine or acquisition now, not after the initial design
        check_engine(engine)
        if acquisition != "auto":
            make_acquisition(acquisition)
        if not isinstance(max_consecutive_failures, int) or max_consecutive_failures < 1:
            raise BayestuneError(
                "max_consecutive_failures must be a positive integer, "
                f"got {max_consecutive_failures!r}"
            )
        self.n_initial = int(n_initial)
        self.initial_design = initial_design
        self.max_consecutive_failures = max_consecutive_failures
        if scheduler is not None and not isinstance(scheduler, ASHA):
            raise BayestuneError(f"scheduler must be an ASHA instance, got {scheduler!r}")
        self.scheduler = scheduler
        #: the objective takes ``(params, trial)`` and receives a TrialHandle
        self.wants_handle = scheduler is not None or (
            objective is not None and wants_trial_handle(objective))
        self._noisy_option = noisy
        self._acquisition_option = acquisition
        self._surrogate_config = surrogate
        self._optimizer_config = optimizer
        self._engine_option = engine
        self._engines: dict[str, Engine] = {}
        self.store = CampaignStore(
            store, self.space, seed,
            metadata={"engine": engine if isinstance(engine, str) else type(engine).__name__,
                      "acquisition": acquisition if isinstance(acquisition, str)
                      else type(acquisition).__name__,
                      "n_initial": self.n_initial, "initial_design": initial_design,
                      **(metadata or {})},
        )
        self.seed = self.store.seed
        self._reissued: set[int] = set()
        #: optimiser wall-clock seconds of each ask() of this session, for benchmarks
        self.ask_seconds: list[float] = []

    # ------------------------------------------------------------------ state
    @property
    def history(self) -> History:
        """All trials recorded in the store."""
        return self.store.history()

    def is_noisy(self, history: History | None = None) -> bool:
        """Whether the objective is treated as noisy (explicitly, or it reports variances)."""
        if self._noisy_option is not None:
            return bool(self._noisy_option)
        history = history if history is not None else self.history
        return any(t.variance is not None and t.variance > 0 for t in history.completed)

    def _engine(self, history: History) -> Engine:
        """The proposal engine; ``"auto"`` acquisition resolved once noise is known."""
        if isinstance(self._engine_option, Engine):
            return self._engine_option
        acquisition = self._acquisition_option
        if acquisition == "auto":
            acquisition = "nei" if self.is_noisy(history) else "ei"
        key = f"{self._engine_option}:{acquisition}"
        if key not in self._engines:
            if self._engine_option == "gp" and self.scheduler is not None:
                self._engines[key] = MultiFidelityGPEngine(
                    self.space, self.scheduler, acquisition, self._surrogate_config,
                    self._optimizer_config)
            else:
                self._engines[key] = make_engine(self._engine_option, self.space, acquisition,
                                                 self._surrogate_config, self._optimizer_config)
        return self._engines[key]

    def model_history(self, history: History | None = None) -> History:
        """The trials as the surrogate sees them.

        Without a scheduler, the history itself. With one, every completed trial carries
        its value at a common training budget (see :meth:`ASHA.model_history`).
        """
        history = history if history is not None else self.history
        if self.scheduler is None:
            return history
        return self.scheduler.model_history(history, n_min=max(self.space.n_columns + 1, 4))

    # ------------------------------------------------------------------ ask / tell
    def ask(self, n: int | None = None) -> Trial | list[Trial]:
        """Propose the next point (``n=None``) or ``n`` points, recorded as pending.

        Pending trials found in the store when a campaign is resumed (points that were in
        flight when it stopped) are handed out again first.

        Returns
        -------
        Trial or list of Trial
        """
        if n is not None and (not isinstance(n, (int, np.integer)) or n < 1):
            raise BayestuneError(f"n must be a positive integer, got n={n!r}")
        count = 1 if n is None else int(n)
        trials = self._reissue_pending(count)
        if len(trials) < count:
            start = time.perf_counter()
            trials.extend(self._propose(count - len(trials)))
            self.ask_seconds.append(time.perf_counter() - start)
        return trials[0] if n is None else trials

    @property
    def reissued(self) -> frozenset[int]:
        """Numbers of the pending trials this tuner has handed out (asked or re-asked)."""
        return frozenset(self._reissued)

    def _reissue_pending(self, count: int) -> list[Trial]:
        out: list[Trial] = []
        for t in self.history.pending:
            if len(out) == count:
                break
            if t.number not in self._reissued:
                self._reissued.add(t.number)
                out.append(t)
        return out

    def _propose(self, count: int) -> list[Trial]:
        history = self.history
        number = len(history)
        rng = np.random.default_rng([self.seed, number])
        state = rng.bit_generator.state
        n_done = len(history.completed)
        if number < self.n_initial or n_done < 2:
            points = [self._design_point(number + i) for i in range(count)]
            source = f"design:{self.initial_design}"
        else:
            engine = self._engine(history)
            # a multi-fidelity engine reads every budget itself; others see one budget
            seen = history if isinstance(engine, MultiFidelityGPEngine) else \
                self.model_history(history)
            points = engine.propose(seen, count, rng)
            source = engine.source
        trials = []
        for point in points:
            trial = self.store.add_pending(self.space.validate(point), source, state)
            self._reissued.add(trial.number)
            trials.append(trial)
        return trials

    def _design_point(self, k: int) -> dict[str, Any]:
        """Point ``k`` of the initial design (a Sobol prefix extends beyond ``n_initial``)."""
        rng = np.random.default_rng([self.seed, _DESIGN_STREAM])
        if self.initial_design == "sobol":
            return self.space.sample(k + 1, rng, "sobol")[k]
        if k < self.n_initial:
            return self.space.sample(self.n_initial, rng, self.initial_design)[k]  # type: ignore
        return self.space.sample(1, np.random.default_rng([self.seed, _DESIGN_STREAM, k]),
                                 "random")[0]

    def tell(self, trial: Trial | int, result: float | Evaluation | Outcome) -> Trial:
        """Record the outcome of a trial (committed to the store at once).

        Parameters
        ----------
        trial : Trial or int
            The trial returned by :meth:`ask`, or its number.
        result : float, Evaluation or Outcome
            What the objective returned. NaN or inf is recorded as a failure.
        """
        number = trial.number if isinstance(trial, Trial) else int(trial)
        outcome = result if isinstance(result, Outcome) else as_outcome(result)
        return self.store.finish(number, outcome)

    def add(self, params: dict[str, Any], result: float | Evaluation | Outcome,
            source: str = "user") -> Trial:
        """Record an evaluation made outside the tuner (e.g. a known tune) as a trial."""
        trial = self.store.add_pending(self.space.validate(params), source)
        return self.tell(trial, result)

    # ------------------------------------------------------------------ loop
    def run(
        self,
        n_evals: int,
        callback: Callable[[Trial], None] | None = None,
        *,
        n_workers: int | None = None,
        executor: Any = None,
        batch: bool = False,
        timeout: float | None = None,
        retries: int = 0,
        stop_when: Callable[[History], bool] | None = None,
        max_driver_deaths: int = 2,
    ) -> Result:
        """Evaluate until the campaign has ``n_evals`` finished trials, then summarise.

        Finished trials already in the store (a resumed campaign) count towards
        ``n_evals``; points that were in flight when it stopped are evaluated first. A
        failing objective is recorded and the loop continues; after
        ``max_consecutive_failures`` failures in a row it stops with :class:`CampaignError`
        (everything finished so far stays in the store). Ctrl-C stops the evaluations in
        flight, keeps every finished one, and re-raises ``KeyboardInterrupt``.

        Parameters
        ----------
        n_evals : int
            Finished trials (completed or failed) the campaign should have.
        callback : callable, optional
            Called with each finished :class:`Trial`, in the driver process.
        n_workers : int, optional
            Evaluations in flight at once. With ``n_workers > 1`` and no ``executor`` each
            evaluation runs in its own local process (see :class:`IsolatedProcessExecutor`).
            Default: as many as the ``executor`` has workers (a pool's ``max_workers``, a
            Dask cluster's worker threads), else 1.
        executor : concurrent.futures.Executor or dask.distributed.Client, optional
            Where evaluations run. The objective must be picklable unless it is a
            ``ThreadPoolExecutor``.
        batch : bool
            Propose ``n_workers`` points jointly and wait for all of them; default is
            asynchronous (a new point whenever any evaluation finishes).
        timeout : float, optional
            Seconds after which an evaluation is stopped and recorded as failed.
        retries : int
            Extra attempts of a failed evaluation before the failure is recorded.
        stop_when : callable, optional
            ``stop_when(history) -> bool``, checked after every finished trial: when true,
            no new trial is started and the loop ends once those in flight are done (e.g.
            a total budget of training epochs).
        max_driver_deaths : int
            A pending point whose evaluation in this process ended the process this many
            times (a segfault, ``os._exit``, the out-of-memory killer) is recorded as failed
            when the campaign resumes, instead of ending it once more.
        """
        if self.objective is None:
            raise BayestuneError("run() needs an objective; pass it to Tuner(space, objective)")
        if not isinstance(n_evals, (int, np.integer)) or isinstance(n_evals, bool) \
                or n_evals < 1:
            raise BayestuneError(f"n_evals must be a positive integer, got n_evals={n_evals!r}")
        if n_workers is None:
            n_workers = executor_workers(executor)
        config = ExecutionConfig(n_workers=n_workers, executor=executor, batch=batch,
                                 timeout=timeout, retries=retries,
                                 max_driver_deaths=max_driver_deaths)
        run_campaign(self, int(n_evals), config, callback, stop_when)
        return self.result()

    def check_failures(self, history: History | None = None) -> None:
        """Raise :class:`CampaignError` when the last evaluations all failed (in ``history``,
        default: the store's)."""
        history = history if history is not None else self.history
        finished = [t for t in history if t.status is not Status.PENDING]
        tail = finished[-self.max_consecutive_failures:]
        if len(tail) == self.max_consecutive_failures and all(
                t.status is Status.FAILED for t in tail):
            last = (tail[-1].error or "").strip().splitlines()
            raise CampaignError(
                f"the last {self.max_consecutive_failures} evaluations all failed; "
                f"stopping. Last error: {last[0] if last else 'unknown'}"
            )

    # ------------------------------------------------------------------ result
    def result(self) -> Result:
        """Recommendation from everything in the store.

        The surrogate is refitted to all completed trials. For a noisy objective the
        recommendation is the evaluated point with the lowest posterior mean.
        """
        full = self.history
        history = self.model_history(full)
        done = history.completed
        noisy = self.is_noisy(history)
        if not done:
            return Result(x={}, fun=float("nan"), history=full, space=self.space,
                          noisy=noisy, success=False,
                          message=f"no evaluation completed ({len(full.failed)} failed)")
        surrogate = self._fit_final_surrogate(history)
        fun_std = None
        if noisy and surrogate is not None:
            mean, std = surrogate.predict(self.space.to_unit([t.params for t in done]))
            k = int(np.argmin(mean))
            best, fun, fun_std = done[k], float(mean[k]), float(std[k])
            how = "lowest posterior mean among evaluated points"
        else:
            observed = history.best()
            assert observed is not None and observed.value is not None  # done is not empty
            best, fun = observed, float(observed.value)
            if surrogate is not None:
                fun_std = float(surrogate.predict(self.space.to_unit(best.params))[1][0])
            how = "best observed value"
        if self.scheduler is not None and history is not full:
            how += f" at the common budget of {len(done)} trials"
        return Result(x=dict(best.params), fun=fun, fun_std=fun_std, history=full,
                      space=self.space, surrogate=surrogate, noisy=noisy, success=True,
                      at_limit=parameters_at_limit(self.space, best.params),
                      message=f"{full.n_finished} evaluations, {how} (trial {best.number})")

    def _fit_final_surrogate(self, history: History) -> GPSurrogate | None:
        if len(history.completed) < 2:
            return None
        engine = self._engine(history)
        if not isinstance(engine, GPEngine) or isinstance(engine, MultiFidelityGPEngine):
            engine = GPEngine(self.space, "ei", self._surrogate_config, self._optimizer_config)
        rng = np.random.default_rng([self.seed, len(history), 1])
        return engine.fit(history, rng)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Tuner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def minimize(
    fun: Callable[[dict[str, Any]], float | Evaluation],
    space: Space | Sequence[Dimension],
    n_evals: int,
    seed: int | None = None,
    **tuner_options: Any,
) -> Result:
    """Minimise an expensive black-box function with GP Bayesian optimisation.

    Parameters
    ----------
    fun : callable
        ``fun(params: dict) -> float | Evaluation``.
    space : Space or list of Dimension
    n_evals : int
        Total number of evaluations (including the initial design and failures).
    seed : int, optional
    **tuner_options
        Any keyword of :class:`Tuner` (``store``, ``engine``, ``acquisition``, ...).

    Returns
    -------
    Result
    """
    with Tuner(space, fun, seed=seed, **tuner_options) as tuner:
        return tuner.run(n_evals)
