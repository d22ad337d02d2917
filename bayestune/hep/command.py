"""Any generator through a command that writes YODA.

Herwig, Sherpa, or Pythia with one's own Rivet analyses are run the way physicists run them:
a script that reads a parameter point, generates events, pipes them through Rivet and leaves a
YODA file. :class:`CommandSimulator` is the simulator of such a script. For each point it

1. makes a fresh run directory and writes the point to ``params.dat`` (Professor's format,
   one ``name value`` per line) and ``params.json``;
2. runs the command template with the placeholders filled in, in that directory (or in
   ``cwd``), with its standard output and error going to ``stdout.txt`` and ``stderr.txt`` in
   the run directory;
3. reads the YODA files it left (``outputs``, glob patterns), every 1-D object keyed by its
   path, which :class:`~bayestune.hep.chi2.HistogramObjective` matches to the reference.

A non-zero exit, a timeout (the command's whole process group is killed) or a missing output
raises :class:`CommandError` with the command's last lines of output, which the tuner records
as a failed trial. The simulator is a plain picklable object: it runs in worker processes and
on Dask like any other objective.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..exceptions import ObjectiveError
from ..seeding import point_seed
from .histogram import Histogram
from .io import YodaWarning, read_yoda

__all__ = ["CommandError", "CommandSimulator", "read_params", "read_run", "run_files",
           "write_params"]

#: placeholders of a command template
PLACEHOLDERS = ("params", "params_json", "outdir", "seed", "n_events", "python")
#: the largest seed handed to the command (Pythia's Random:seed accepts up to 900 000 000)
SEED_MAX = 900_000_000
_KEEP = ("failed", "always", "never")
_TAIL_LINES = 20


class CommandError(ObjectiveError):
    """The generator command failed, timed out or left no output."""


def write_params(params: Mapping[str, Any], path: str | Path) -> Path:
    """Write a point as Professor's ``params.dat``: one ``name value`` per line."""
    lines = []
    for name, value in params.items():
        if any(c.isspace() for c in str(name)):
            raise ValueError(f"parameter name {name!r} contains white space, which params.dat "
                             "cannot hold")
        text = repr(float(value)) if isinstance(value, float) else str(value)
        lines.append(f"{name} {text}")
    out = Path(path)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def read_params(path: str | Path) -> dict[str, Any]:
    """Read a ``params.dat`` (``name value`` per line; ``#`` comments): numbers as floats,
    anything else as text."""
    out: dict[str, Any] = {}
    for lineno, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{lineno}: expected 'name value', got {raw!r}")
        name, text = parts[0], parts[1].strip()
        try:
            out[name] = float(text)
        except ValueError:
            out[name] = text
    return out


@dataclass(frozen=True)
class CommandSimulator:
    """Simulate histograms by running a command that writes YODA.

    Parameters
    ----------
    command : str or list of str
        The command template, e.g. ``"run-herwig.sh {params} {outdir}"`` or
        ``["python", "gen.py", "--seed", "{seed}"]``. Placeholders: ``{params}`` (the
        ``params.dat`` path), ``{params_json}``, ``{outdir}`` (the run directory, where the
        outputs are looked for), ``{seed}`` (from ``seed`` and the point, between 1 and
        :data:`SEED_MAX`), ``{n_events}`` and ``{python}`` (this Python interpreter, for
        generator scripts written in Python). A string is split like a shell would split it,
        but runs without a shell unless ``shell=True``.
    outputs : str or list of str
        Glob patterns, relative to the run directory, of the YODA files to read
        (``.yoda`` or ``.yoda.gz``).
    rundir : path, optional
        Where the run directories are made (default: the system's temporary directory).
    timeout : float, optional
        Seconds before the command is killed and the trial fails.
    seed : int
        Base of the per-point ``{seed}`` (the same point always gets the same seed).
    n_events : int, optional
        Events per run, for ``{n_events}`` and the budget's event count.
    keep : {"failed", "always", "never"}
        Which run directories to keep after reading them.
    env : mapping, optional
        Environment variables added to the command's environment.
    fixed : mapping, optional
        Settings written to the parameter files with every point.
    shell : bool
        Run the filled-in string through ``/bin/sh`` (pipes, redirections); placeholders are
        then quoted for the shell.
    cwd : path, optional
        The command's working directory (default: the run directory).
    """

    command: str | Sequence[str]
    outputs: str | Sequence[str] = "*.yoda*"
    rundir: str | Path | None = None
    timeout: float | None = None
    seed: int = 1
    n_events: int | None = None
    keep: str = "failed"
    env: Mapping[str, str] | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)
    shell: bool = False
    cwd: str | Path | None = None

    def __post_init__(self) -> None:
        template = self._template()
        if not template:
            raise ValueError(f"command must name a program, got command={self.command!r}")
        for token in template:
            try:
                token.format(**{k: "" for k in PLACEHOLDERS})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"command={self.command!r}: {token!r} has an unknown or "
                                 f"malformed placeholder ({exc}); known: "
                                 f"{', '.join('{' + k + '}' for k in PLACEHOLDERS)}") from None
        patterns = self._patterns()
        if not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise ValueError(f"outputs must be glob patterns, got outputs={self.outputs!r}")
        if self.timeout is not None and not float(self.timeout) > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got "
                             f"timeout={self.timeout!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got seed={self.seed!r}")
        if self.n_events is not None and (isinstance(self.n_events, bool) or not isinstance(
                self.n_events, int) or self.n_events < 1):
            raise ValueError(f"n_events must be a positive integer, got "
                             f"n_events={self.n_events!r}")
        if self.keep not in _KEEP:
            raise ValueError(f"keep must be one of {_KEEP}, got keep={self.keep!r}")

    def _template(self) -> list[str]:
        if isinstance(self.command, str):
            return shlex.split(self.command)
        return [str(t) for t in self.command]

    def replicate(self, *, seed: int | None = None,
                  n_events: int | None = None) -> CommandSimulator:
        """A copy with another seed and/or events per run (``{n_events}`` must be used by the
        command for the latter to matter)."""
        return replace(self, seed=self.seed if seed is None else seed,
                       n_events=self.n_events if n_events is None else n_events)

    def point_seed(self, params: Mapping[str, Any]) -> int:
        """The ``{seed}`` of a point: from ``seed`` and the point's key, in [1, SEED_MAX]."""
        return point_seed(self.seed, params) % SEED_MAX + 1

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Histogram]:
        run = self._new_rundir(params)
        try:
            hists = self._run(params, run)
        except BaseException:
            if self.keep == "never":
                _remove(run)
            raise
        if self.keep != "always":
            _remove(run)
        return hists

    # ------------------------------------------------------------------ helpers
    def _new_rundir(self, params: Mapping[str, Any]) -> Path:
        parent = Path(self.rundir) if self.rundir is not None else Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        stem = f"run-{point_seed(0, params) % 10**8:08d}-"
        return Path(tempfile.mkdtemp(prefix=stem, dir=parent))

    def _run(self, params: Mapping[str, Any], run: Path) -> dict[str, Histogram]:
        point = {**dict(self.fixed), **dict(params)}
        fill = {"params": str(write_params(point, run / "params.dat")),
                "params_json": str(run / "params.json"), "outdir": str(run),
                "seed": str(self.point_seed(params)),
                "n_events": "" if self.n_events is None else str(self.n_events),
                "python": sys.executable}
        (run / "params.json").write_text(json.dumps(point, default=str, indent=1),
                                         encoding="utf-8")
        if self.shell:
            quoted = {k: shlex.quote(v) for k, v in fill.items()}
            args: str | list[str] = " ".join(t.format(**quoted) for t in self._template())
        else:
            args = [t.format(**fill) for t in self._template()]
        self._execute(args, run)
        return self._read_outputs(run)

    def _execute(self, args: str | list[str], run: Path) -> None:
        env = {**os.environ, **{str(k): str(v) for k, v in (self.env or {}).items()}}
        with open(run / "stdout.txt", "wb") as out, open(run / "stderr.txt", "wb") as err:
            try:
                proc = subprocess.Popen(args, cwd=run if self.cwd is None else self.cwd,
                                        stdout=out, stderr=err, env=env,
                                        shell=self.shell, start_new_session=True,
                                        preexec_fn=_die_with_parent if sys.platform ==
                                        "linux" else None)
            except OSError as exc:
                raise CommandError(f"cannot start the command {args!r}: {exc}") from None
            try:
                code = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise CommandError(f"the command timed out after {self.timeout:g} s in {run}"
                                   + _tail(run)) from None
            except BaseException:
                _kill_group(proc)
                raise
        if code != 0:
            raise CommandError(f"the command exited with status {code} in {run}" + _tail(run))

    def _read_outputs(self, run: Path) -> dict[str, Histogram]:
        files = run_files(run, self._patterns())
        if not files:
            raise CommandError(f"the command left no file matching {self._patterns()} in "
                               f"{run}" + _tail(run))
        return read_run(files)

    def _patterns(self) -> list[str]:
        return [self.outputs] if isinstance(self.outputs, str) else list(self.outputs)

    def __repr__(self) -> str:
        return f"CommandSimulator({self.command!r}, outputs={self.outputs!r})"


def run_files(run: Path, outputs: str | Sequence[str]) -> list[Path]:
    """The files of the run folder ``run`` matching the glob pattern(s) ``outputs``, sorted."""
    patterns = [outputs] if isinstance(outputs, str) else list(outputs)
    return sorted({p for pattern in patterns for p in run.glob(pattern) if p.is_file()})


def read_run(files: Sequence[Path]) -> dict[str, Histogram]:
    """Every 1-D object of a run's YODA files, keyed by path. A run's file holds every
    analysis object (counters, 2-D, raw copies): those are skipped without a warning, and the
    chi2 names any observable that is missing."""
    out: dict[str, Histogram] = {}
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", YodaWarning)
            out.update(read_yoda(path))
    return out


def _die_with_parent() -> None:
    """In the command's process (Linux): be killed when the process that started it dies, so
    that a killed campaign leaves no generator running."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(run: Path) -> str:
    """The last lines of the command's standard error (else its output), for the trial's
    error text."""
    for name in ("stderr.txt", "stdout.txt"):
        path = run / name
        if path.exists():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            if lines:
                return f"; last lines of {name}:\n" + "\n".join(lines[-_TAIL_LINES:])
    return "; it wrote nothing"


def _remove(run: Path) -> None:
    import shutil

    shutil.rmtree(run, ignore_errors=True)
