"""Running evaluations: in-process, in isolated local processes, or on any Executor.

The campaign loop (:func:`run_campaign`) keeps up to ``n_workers`` evaluations in flight.
In asynchronous mode a new point is asked for as soon as any evaluation finishes (the
still-running points are *pending* in the store, and the GP engine conditions on them by
kriging believer); in batch mode ``n_workers`` points are asked for jointly and all of them
are awaited before the next batch.

Only the driver process (the one running the loop) writes the store. Workers receive the
objective and one parameter dict and send back an :class:`~bayestune.objective.Outcome`.

Executors
---------
* no executor, one worker, no timeout: the objective is called in the driver process;
* no executor otherwise: :class:`IsolatedProcessExecutor` -- one fresh process per
  evaluation, so a timeout can kill exactly the evaluation that hangs and a crash (segfault,
  ``os._exit``, the OOM killer) is charged to exactly the evaluation that caused it;
* any :class:`concurrent.futures.Executor` (thread or process pools, ``mpi4py.futures``,
  ...) or a ``dask.distributed.Client`` (clusters, through dask-jobqueue on SLURM/HTCondor).
  Running tasks of a foreign executor cannot be killed: on a timeout the trial is recorded
  as failed, the task is cancelled if it has not started, and its late result is ignored.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from .exceptions import BayestuneError, CampaignError
from .history import Trial
from .objective import Outcome, evaluate
from .scheduler import HandleFactory, driver_host

__all__ = [
    "ExecutionConfig",
    "IsolatedProcessExecutor",
    "WorkerDiedError",
    "executor_workers",
    "run_campaign",
]

_POLL_SECONDS = 0.05


class WorkerDiedError(BayestuneError):
    """The process running an evaluation ended without returning a result."""


class EvaluationTimeout(BayestuneError):
    """An evaluation ran longer than the configured timeout and was stopped."""


# ---------------------------------------------------------------------------- executor
def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _watch_the_driver(lifeline: Connection) -> None:
    """End this worker and its subprocesses when the driver's end of ``lifeline`` closes:
    the driver died (even by ``kill -9``), and a resumed campaign evaluates the point again."""
    try:
        lifeline.recv()
    except (EOFError, OSError):
        pass
    with contextlib.suppress(OSError):
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)


def _child_main(conn: Connection, payload: bytes, lifeline: Connection | None = None) -> None:
    """Entry point of an isolated worker process: run one task, send back its result."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what Ctrl-C stops
    with contextlib.suppress(OSError):
        os.setpgrp()  # own process group: a kill reaches the task's own subprocesses too
    if lifeline is not None:
        threading.Thread(target=_watch_the_driver, args=(lifeline,), daemon=True,
                         name="bayestune-lifeline").start()
    try:
        fn, args, kwargs = pickle.loads(payload)
        message: tuple[bool, Any] = (True, fn(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the driver
        message = (False, exc)
    try:
        conn.send(message)
    except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
        conn.send((False, BayestuneError(f"could not send the result back: {exc!r}")))
    conn.close()


@dataclass
class _Task:
    future: cf.Future[Any]
    payload: bytes
    process: multiprocessing.process.BaseProcess | None = None
    conn: Connection | None = None
    lifeline: Connection | None = None  # the driver's end; closing it ends the worker


class IsolatedProcessExecutor(cf.Executor):
    """Run every task in its own fresh process, at most ``max_workers`` at a time.

    Compared with :class:`concurrent.futures.ProcessPoolExecutor` a process that dies
    fails only its own task (with :class:`WorkerDiedError` and the exit code or signal),
    and :meth:`kill` stops one running task (with its subprocesses). The cost is a process
    start per task (tens of milliseconds with the ``forkserver`` method, whose server has
    bayestune preloaded), negligible for the minutes-long evaluations this is for.

    Parameters
    ----------
    max_workers : int
    start_method : str, optional
        ``multiprocessing`` start method; default ``"forkserver"`` where available, else
        ``"spawn"``. Both need the objective to be importable (defined at module level,
        scripts guarded by ``if __name__ == "__main__":``).
    """

    def __init__(self, max_workers: int, start_method: str | None = None) -> None:
        if not isinstance(max_workers, int) or max_workers < 1:
            raise BayestuneError(f"max_workers must be a positive integer, got {max_workers!r}")
        if start_method is None:
            methods = multiprocessing.get_all_start_methods()
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        self._ctx: Any = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._ctx.set_forkserver_preload(["bayestune.objective"])
        self.max_workers = max_workers
        self._queue: list[_Task] = []
        self._running: list[_Task] = []
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._shutdown = False
        self._thread = threading.Thread(target=self._manage, name="bayestune-executor",
                                        daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        if self._shutdown:
            raise RuntimeError("cannot submit to an executor that was shut down")
        payload = pickle.dumps((fn, args, kwargs))  # fails here, in the caller, if unpicklable
        future: cf.Future[Any] = cf.Future()
        with self._lock:
            self._queue.append(_Task(future, payload))
        self._wakeup.set()
        return future

    def kill(self, future: cf.Future[Any], reason: BaseException | None = None) -> bool:
        """Stop the task of ``future`` (queued or running); its future gets ``reason``.

        Returns False when the task had already finished.
        """
        with self._lock:
            for task in self._queue:
                if task.future is future:
                    self._queue.remove(task)
                    future.cancel()
                    return True
            found = next((t for t in self._running if t.future is future), None)
            if found is None:
                return False
            self._running.remove(found)
        self._terminate(found)
        if not future.done():
            future.set_exception(reason or EvaluationTimeout("evaluation was stopped"))
        return True

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; with ``cancel_futures`` also kill the running ones."""
        self._shutdown = True
        if cancel_futures:
            with self._lock:
                queued, self._queue = self._queue, []
                running, self._running = self._running, []
            for task in queued:
                task.future.cancel()
            for task in running:
                self._terminate(task)
                if not task.future.done():
                    task.future.set_exception(WorkerDiedError("stopped at shutdown"))
        self._wakeup.set()
        if wait:
            self._thread.join()

    # -------------------------------------------------------------- manager thread
    def _terminate(self, task: _Task) -> None:
        process = task.process
        if process is None or process.pid is None:
            return
        for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            if not process.is_alive():
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)
            process.join(grace)
        if task.conn is not None:
            task.conn.close()
        if task.lifeline is not None:
            task.lifeline.close()

    def _start(self, task: _Task) -> None:
        if not task.future.set_running_or_notify_cancel():
            return
        receiver, sender = self._ctx.Pipe(duplex=False)
        held, given = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(target=_child_main, args=(sender, task.payload, held),
                                    daemon=False)
        try:
            process.start()
        except Exception as exc:  # noqa: BLE001 - e.g. too many processes
            task.future.set_exception(WorkerDiedError(f"could not start a process: {exc}"))
            return
        sender.close()
        held.close()
        task.process, task.conn, task.lifeline = process, receiver, given
        self._running.append(task)

    def _collect(self, task: _Task) -> None:
        """The task's pipe is readable or its process ended: settle its future."""
        assert task.conn is not None and task.process is not None
        try:
            ok, value = task.conn.recv()
        except (EOFError, OSError):
            task.process.join(5.0)
            code = task.process.exitcode
            how = (f"was killed by {_signal_name(code)}" if code is not None and code < 0
                   else f"exited with code {code}")
            if not task.future.done():
                task.future.set_exception(WorkerDiedError(
                    f"the worker process (pid {task.process.pid}) {how} before returning "
                    "a result"))
        else:
            task.process.join(5.0)
            if not task.future.done():
                if ok:
                    task.future.set_result(value)
                else:
                    task.future.set_exception(value)
        task.conn.close()
        if task.lifeline is not None:
            task.lifeline.close()

    def _manage(self) -> None:
        while True:
            with self._lock:
                while self._queue and len(self._running) < self.max_workers:
                    self._start(self._queue.pop(0))
                running = list(self._running)
                if self._shutdown and not running and not self._queue:
                    return
            if not running:
                self._wakeup.wait(_POLL_SECONDS * 4)
                self._wakeup.clear()
                continue
            handles: dict[Any, _Task] = {}
            for task in running:
                if task.conn is not None and not task.conn.closed:
                    handles[task.conn] = task
                    if task.process is not None:
                        handles[task.process.sentinel] = task
            ready = wait(list(handles), timeout=_POLL_SECONDS)
            finished = {id(handles[h]): handles[h] for h in ready}
            for task in finished.values():
                with self._lock:
                    if task not in self._running:
                        continue  # killed meanwhile
                    self._running.remove(task)
                self._collect(task)


# ---------------------------------------------------------------------------- campaign
@dataclass(frozen=True)
class ExecutionConfig:
    """How :meth:`Tuner.run` evaluates points.

    Attributes
    ----------
    n_workers : int
        Evaluations in flight at once.
    executor : Executor or dask.distributed.Client, optional
        Where evaluations run; default: in-process for one worker without timeout, else an
        :class:`IsolatedProcessExecutor` with ``n_workers`` processes.
    batch : bool
        Ask for ``n_workers`` points jointly and wait for the whole batch (synchronous);
        default asynchronous (a new point as soon as any evaluation finishes).
    timeout : float, optional
        Seconds an evaluation may run before it is stopped and recorded as failed.
    retries : int
        Extra attempts for an evaluation that failed (exception, timeout, dead worker)
        before the trial is recorded as failed.
    max_driver_deaths : int
        A point whose in-process evaluation ended the driver process (a segfault,
        ``os._exit``, the kernel's out-of-memory killer, ``kill -9``) this many times is
        recorded as failed when the campaign is resumed, instead of being evaluated again.
    """

    n_workers: int = 1
    executor: Any = None
    batch: bool = False
    timeout: float | None = None
    retries: int = 0
    max_driver_deaths: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.n_workers, int) or isinstance(self.n_workers, bool) \
                or self.n_workers < 1:
            raise BayestuneError(
                f"n_workers must be a positive integer, got n_workers={self.n_workers!r}")
        if self.timeout is not None and not (
                isinstance(self.timeout, (int, float)) and self.timeout > 0):
            raise BayestuneError(f"timeout must be a positive number of seconds, "
                                 f"got timeout={self.timeout!r}")
        if not isinstance(self.max_driver_deaths, int) or isinstance(
                self.max_driver_deaths, bool) or self.max_driver_deaths < 1:
            raise BayestuneError("max_driver_deaths must be a positive integer, got "
                                 f"max_driver_deaths={self.max_driver_deaths!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise BayestuneError(
                f"retries must be a non-negative integer, got retries={self.retries!r}")
        if self.executor is not None and not hasattr(self.executor, "submit"):
            raise BayestuneError(
                "executor must be a concurrent.futures.Executor or a dask.distributed.Client, "
                f"got executor={self.executor!r}")


class _InlineExecutor(cf.Executor):
    """Runs each task at submit time in the calling process."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed to the loop like any executor's
            future.set_exception(exc)
        return future


def executor_workers(executor: Any) -> int:
    """How many evaluations ``executor`` runs at once (1 for no executor or unknown kinds)."""
    if executor is None:
        return 1
    if _is_dask_client(executor):
        return max(1, sum(executor.nthreads().values()))
    for attribute in ("max_workers", "_max_workers"):  # ours; the concurrent.futures pools
        count = getattr(executor, attribute, None)
        if isinstance(count, int) and count >= 1:
            return count
    return 1


def _is_dask_client(executor: Any) -> bool:
    return type(executor).__module__.startswith("distributed") and hasattr(
        executor, "get_executor")


def check_picklable(objective: Any, executor: Any) -> None:
    """Raise a clear error when ``objective`` cannot be sent to worker processes."""
    if isinstance(executor, (cf.ThreadPoolExecutor, _InlineExecutor)):
        return
    if _is_dask_client(executor):
        import cloudpickle

        dumps: Callable[[Any], bytes] = cloudpickle.dumps
    else:
        dumps = pickle.dumps
    try:
        dumps(objective)
    except Exception as exc:  # noqa: BLE001 - pickling raises many types
        raise BayestuneError(
            f"the objective {objective!r} cannot be pickled, so it cannot be sent to worker "
            f"processes ({type(exc).__name__}: {exc}). Define it at module level (not a lambda "
            "or nested function), keep open files and connections out of it, or use "
            "a concurrent.futures.ThreadPoolExecutor."
        ) from exc


def _failure_reason(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, EvaluationTimeout | cf.TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, WorkerDiedError):
        return f"worker died: {exc}"
    if isinstance(exc, BrokenProcessPool):
        return f"worker died (the process pool broke): {exc}"
    if isinstance(exc, cf.CancelledError):
        return "evaluation was cancelled by the executor"
    if type(exc).__name__ == "KilledWorker":  # dask: the task killed its workers repeatedly
        return f"worker died: {exc}"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Running:
    trial: Trial
    attempt: int
    started: float


class _Dispatcher:
    """Submits trials to an executor and turns futures into outcomes (with retries)."""

    def __init__(self, objective: Callable[..., Any], config: ExecutionConfig,
                 handles: Callable[[Any], Any] | None = None) -> None:
        self.objective = objective
        self.config = config
        self.handles = handles
        self.owned = config.executor is None
        if config.executor is None:
            simple = config.n_workers == 1 and config.timeout is None
            self.executor: Any = (_InlineExecutor() if simple
                                  else IsolatedProcessExecutor(config.n_workers))
        elif _is_dask_client(config.executor):
            self.executor = config.executor.get_executor(pure=False)
        else:
            self.executor = config.executor
        check_picklable(objective, config.executor if config.executor is not None
                        else self.executor)
        self.in_flight: dict[cf.Future[Any], _Running] = {}

    @property
    def in_process(self) -> bool:
        """Evaluations run in this process (trial handles can talk to the driver directly)."""
        return isinstance(self.executor, (_InlineExecutor, cf.ThreadPoolExecutor))

    def submit(self, trial: Trial, attempt: int = 1) -> None:
        args: tuple[Any, ...] = (self.objective, trial.params)
        if self.handles is not None:
            args += (self.handles(trial),)
        try:
            future = self.executor.submit(evaluate, *args)
        except cf.BrokenExecutor as exc:
            raise CampaignError(
                f"the executor is broken and accepts no more work ({exc}); finished "
                "evaluations are saved: resume the campaign with a new executor") from exc
        self.in_flight[future] = _Running(trial, attempt, time.monotonic())

    def next_finished(self) -> list[tuple[Trial, Outcome]]:
        """Wait for at least one evaluation to end; retried ones are resubmitted."""
        while True:
            timeout = _POLL_SECONDS * 10 if self.config.timeout is not None else None
            done, _ = cf.wait(list(self.in_flight), timeout=timeout,
                              return_when=cf.FIRST_COMPLETED)
            ended = [(f, self.in_flight.pop(f), self._outcome(f)) for f in done]
            ended += self._expired()
            out = []
            for _future, running, outcome in ended:
                if outcome.status.value == "failed" and running.attempt <= self.config.retries:
                    self.submit(running.trial, running.attempt + 1)
                    continue
                if running.attempt > 1 and outcome.error:
                    outcome = Outcome.failed(
                        f"{outcome.error} (after {running.attempt} attempts)", outcome.duration)
                out.append((running.trial, outcome))
            if out:
                return out

    def _outcome(self, future: cf.Future[Any]) -> Outcome:
        try:
            result = future.result()
        except KeyboardInterrupt:  # Ctrl-C in the driver (or passed on by a worker): stop,
            raise  # never a failure of the point
        except BaseException as exc:  # noqa: BLE001 - the worker side failed
            return Outcome.failed(_failure_reason(exc, self.config.timeout))
        if isinstance(result, Outcome):
            return result
        return Outcome.failed(f"worker returned {type(result).__name__}, not an Outcome")

    def _expired(self) -> list[tuple[cf.Future[Any], _Running, Outcome]]:
        limit = self.config.timeout
        if limit is None:
            return []
        now = time.monotonic()
        out = []
        for future, running in list(self.in_flight.items()):
            if now - running.started > limit:
                del self.in_flight[future]
                self._stop(future)
                out.append((future, running, Outcome.failed(
                    f"timed out after {limit:g} s", now - running.started)))
        return out

    def _stop(self, future: cf.Future[Any]) -> None:
        if isinstance(self.executor, IsolatedProcessExecutor):
            self.executor.kill(future, EvaluationTimeout("timed out"))
        else:
            future.cancel()  # stops it only if it has not started; a late result is ignored

    def close(self, interrupted: bool = False) -> None:
        """Stop everything still in flight (their trials stay pending) and clean up."""
        for future in list(self.in_flight):
            self._stop(future) if interrupted else future.cancel()
        self.in_flight.clear()
        if self.owned:
            self.executor.shutdown(wait=True, cancel_futures=True)


def run_campaign(
    tuner: Any,
    n_evals: int,
    config: ExecutionConfig,
    callback: Callable[[Trial], None] | None = None,
    stop_when: Callable[[Any], bool] | None = None,
) -> None:
    """Evaluate until ``tuner``'s store holds ``n_evals`` finished trials.

    Every outcome is committed through ``tuner.tell`` as soon as it arrives. On
    ``KeyboardInterrupt`` the evaluations in flight are stopped, their trials stay pending
    (a resumed campaign hands them out again first), and the interrupt is re-raised.
    ``stop_when(history)``, checked after each finished trial, ends the campaign early.
    """
    dispatcher = _Dispatcher(tuner.objective, config)
    _fail_points_that_killed_the_driver(tuner, config.max_driver_deaths)
    factory = None
    if tuner.wants_handle:
        remote = not dispatcher.in_process
        host = driver_host() if _is_dask_client(config.executor) else "127.0.0.1"
        factory = HandleFactory(tuner.store, tuner.scheduler, remote, host)
        dispatcher.handles = factory
    interrupted = False
    stopping = False
    try:
        while True:
            free = config.n_workers - len(dispatcher.in_flight)
            needed = n_evals - tuner.history.n_finished - len(dispatcher.in_flight)
            if (free > 0 and needed > 0 and not stopping
                    and not (config.batch and dispatcher.in_flight)):
                for trial in tuner.ask(min(free, needed)):
                    if dispatcher.in_process:  # its death would be the driver's
                        tuner.store.record_start(trial.number)
                    dispatcher.submit(trial)
            if not dispatcher.in_flight:
                _abandon_leftovers(tuner)
                return
            for trial, outcome in dispatcher.next_finished():
                done = tuner.tell(trial, outcome)
                if callback is not None:
                    callback(done)
                history = tuner.history  # one read of the store per finished trial
                tuner.check_failures(history)
                if stop_when is not None and stop_when(history):
                    stopping = True
    except KeyboardInterrupt:
        interrupted = True
        if dispatcher.in_process:  # stopped on purpose, not killed by the point
            tuner.store.forget_starts()
        raise
    finally:
        dispatcher.close(interrupted)
        if factory is not None:
            factory.close()


def _fail_points_that_killed_the_driver(tuner: Any, limit: int) -> None:
    """Record as failed the pending points whose evaluation in the driver process ended
    the driver ``limit`` times: rerunning them would end it again."""
    for number, deaths in sorted(tuner.store.driver_deaths().items()):
        outcome = driver_death_failure(deaths, limit)
        if outcome is not None:
            tuner.tell(number, outcome)


def driver_death_failure(deaths: int, limit: int) -> Outcome | None:
    """The failure recorded for a point whose evaluation in the driver process ended the
    driver ``deaths`` times, when that reaches ``limit`` (None below it)."""
    if deaths < limit:
        return None
    return Outcome.failed(
        f"the driver process ended {deaths} times while evaluating this point (a crash, "
        "os._exit, the out-of-memory killer or kill -9) without a result; recorded as "
        "failed and not evaluated again")


def _abandon_leftovers(tuner: Any) -> None:
    """The budget is spent: points an earlier run left in flight that this run did not need
    are recorded as failed (never evaluated), so that no trial stays pending for good."""
    handed_out = tuner.reissued
    for trial in tuner.history.pending:
        if trial.number not in handed_out:
            tuner.tell(trial, Outcome.failed(
                "abandoned: in flight when an earlier run stopped, and not evaluated again "
                "because the campaign's budget was reached without it"))
