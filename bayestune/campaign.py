"""Campaign files: a tuning campaign described in TOML, validated with precise errors.

A campaign file names the search space, the objective, the budget and the options of the
tuner, the surrogate and the execution; ``bayestune run CAMPAIGN.toml`` runs it and running
it again resumes it from its store. Minimal example::

    [campaign]
    n_evals = 30
    seed = 1

    [[parameters]]
    name = "x1"
    type = "real"
    low = -5.0
    high = 10.0

    [[parameters]]
    name = "x2"
    type = "real"
    low = 0.0
    high = 15.0

    [objective]
    type = "python"
    function = "bayestune.testfunctions:branin"   # a factory: called with [objective.options]
    options = {}

Tables and keys (anything else is an error):

``[campaign]``
    ``n_evals`` (required), ``name``, ``store`` (default: the file name with ``.sqlite``,
    next to it), ``seed``, ``start`` (list of points evaluated first, e.g. the current tune),
    ``uncertainty`` (report Delta-chi2 uncertainties; default true for histogram objectives).
``[[parameters]]``
    ``name``, ``type`` (``real``, ``integer``, ``categorical``), ``low``, ``high``, ``log``,
    ``choices``.
``[objective]``
    ``type = "python"``: ``function = "module:attr"``; with ``options`` the attribute is a
    factory called as ``attr(**options)`` that returns the objective.
    ``type = "histograms"``: ``simulate = "module:attr"`` (``simulate_options`` as for
    ``options``) returning ``{name: Histogram}``; ``reference`` (file or list of files:
    YODA, HEPData YAML, CSV, JSON); ``weights`` (table or Professor weight file);
    ``model_uncertainty``; ``correlated_sources`` (error sources of the reference, such as
    ``["sys*"]``, taken as correlated across each histogram's bins).
    ``type = "command"``: any generator through a command that writes YODA
    (:class:`~bayestune.hep.command.CommandSimulator`): ``command`` (template with
    ``{params}``, ``{params_json}``, ``{outdir}``, ``{seed}``, ``{n_events}``, ``{python}``),
    ``outputs``,
    ``rundir`` (default ``<campaign>-runs`` next to the file), ``timeout``, ``seed``,
    ``n_events``, ``keep``, ``env``, ``fixed``, ``shell``, ``cwd`` (default: the campaign's
    folder, so relative paths in the command work); ``reference``, ``weights``,
    ``model_uncertainty``, ``correlated_sources`` as for ``histograms``.
    ``type = "pythia"``: Pythia 8 against the LEP1 data; ``observables`` (set name or list
    of ids), ``n_events``, ``n_workers``, ``data``, ``weights``, ``model_uncertainty``,
    ``fixed`` (other Pythia settings), ``seed``.
``[tuner]``
    ``engine``, ``acquisition``, ``n_initial``, ``initial_design``, ``noisy``,
    ``max_consecutive_failures``.
``[surrogate]``
    Fields of :class:`~bayestune.SurrogateConfig`.
``[execution]``
    ``n_workers``, ``batch``, ``timeout``, ``retries``.
``[closure]``
    ``truth`` (point, or ``"monash"`` for Pythia), ``pseudo_seed``, ``pseudo_events``,
    ``n_repeats``, ``refine_rounds`` (rounds of :func:`~bayestune.refine` with
    ``delta="noise"`` at the end of each closure tune, inside its budget), ``pseudo_errors``
    (``"mc"``: the pseudo-data's own statistics, default; ``"data"``: the reference data's
    errors, :func:`~bayestune.closure.level1_pseudo_data`).

Relative paths are relative to the campaign file, and the campaign file's folder is put on
``sys.path`` so that ``module:attr`` may name a module next to it.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .acquisition import ACQUISITIONS
from .engines import ENGINE_NAMES
from .exceptions import BayestuneError
from .space import Categorical, Dimension, Integer, Real, Space
from .surrogate_config import SurrogateConfig
from .toml_schema import CampaignFileError, Table, describe, load_object
from .tuner import INITIAL_DESIGNS

__all__ = ["Campaign", "CampaignFileError", "load_campaign"]

_TABLES = ("campaign", "parameters", "objective", "tuner", "surrogate", "execution", "closure",
           "method")


@dataclass
class Campaign:
    """A validated campaign file.

    Attributes
    ----------
    path : Path
        The campaign file.
    text : str
        Its TOML text (recorded in the store, so ``status``/``report`` can rebuild it).
    space : Space
    n_evals : int
    store : Path
    seed : int or None
    objective_spec : dict
        The ``[objective]`` table.
    tuner_options, execution_options : dict
        Keyword arguments of :class:`~bayestune.Tuner` and of :meth:`Tuner.run`.
    surrogate : SurrogateConfig or None
    start : list of dict
        Points evaluated before the tuner proposes any.
    closure : dict
        The ``[closure]`` table.
    uncertainty : bool
        Whether reports compute Delta-chi2 uncertainties.
    method : GeneratorTuning or None
        The generator-tuning method of a ``[method] type = "generator"`` table (None: the
        tuner's Bayesian optimisation).
    """

    path: Path
    text: str
    space: Space
    n_evals: int
    store: Path
    seed: int | None
    objective_spec: dict[str, Any]
    tuner_options: dict[str, Any] = field(default_factory=dict)
    execution_options: dict[str, Any] = field(default_factory=dict)
    surrogate: SurrogateConfig | None = None
    start: list[dict[str, Any]] = field(default_factory=list)
    closure: dict[str, Any] = field(default_factory=dict)
    uncertainty: bool = False
    name: str = ""
    method: Any = None

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def objective_type(self) -> str:
        return str(self.objective_spec.get("type", "python"))

    def resolve(self, path: str | Path) -> Path:
        """A path from the campaign file, relative to its folder (``~`` and ``$VARIABLES``
        expanded)."""
        p = Path(os.path.expandvars(str(path))).expanduser()
        return p if p.is_absolute() else self.folder / p

    def _importable(self) -> None:
        folder = str(self.folder.resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)

    # ------------------------------------------------------------------ objective
    def build_objective(self) -> Callable[[dict[str, Any]], Any]:
        """The objective the campaign file describes (built fresh on every call)."""
        self._importable()
        kind = self.objective_type
        if kind == "python":
            return self._callable("function", "options")
        reference = self.reference()
        if kind == "histograms":
            simulate = self._callable("simulate", "simulate_options")
        elif kind == "command":
            simulate = self._command()
        else:
            simulate = self._pythia(reference)
        from .hep.chi2 import HistogramObjective

        return HistogramObjective(simulate, reference, self._weights(),
                                  model_uncertainty=self.objective_spec.get(
                                      "model_uncertainty", 0.0),
                                  n_params=len(self.space), keep_pulls=False, keep_bins=True,
                                  correlated_sources=self.objective_spec.get(
                                      "correlated_sources"))

    def _callable(self, key: str, options_key: str) -> Callable[[dict[str, Any]], Any]:
        where = f"{self.path.name}: [objective] {key}"
        obj = load_object(self.objective_spec[key], where)
        if options_key in self.objective_spec:
            try:
                obj = obj(**self.objective_spec[options_key])
            except TypeError as exc:
                raise CampaignFileError(
                    f"{self.path.name}: [objective] {options_key}: calling "
                    f"{self.objective_spec[key]} with them failed: {exc}") from exc
        if not callable(obj):
            raise CampaignFileError(f"{where}: {self.objective_spec[key]!r} is not callable")
        return obj  # type: ignore[no-any-return]

    def _command(self) -> Callable[[dict[str, Any]], Any]:
        from .hep.command import CommandSimulator

        spec = self.objective_spec
        options = {k: spec[k] for k in _COMMAND_KEYS if k in spec}
        options["rundir"] = self.resolve(spec.get("rundir", f"{self.path.stem}-runs"))
        options["cwd"] = self.resolve(spec.get("cwd", "."))
        try:
            return CommandSimulator(**options)
        except ValueError as exc:
            raise CampaignFileError(f"{self.path.name}: [objective]: {exc}") from None

    def reference(self) -> dict[str, Any]:
        """Reference histograms of a histogram, command or Pythia objective."""
        spec = self.objective_spec
        if self.objective_type == "pythia":
            from .hep import lep

            return lep.load_reference(self._observables(), spec.get("data"))
        from .hep.io import read_histograms

        files = spec["reference"] if isinstance(spec["reference"], list) else [spec["reference"]]
        out: dict[str, Any] = {}
        for name in files:
            path = self.resolve(name)
            if not path.exists():
                raise CampaignFileError(
                    f"{self.path.name}: [objective] reference: file not found: {str(path)!r}")
            out.update(read_histograms(path))
        return out

    def _observables(self) -> list[Any]:
        from .hep import lep

        try:
            return lep.observables(self.objective_spec.get("observables", "core"))
        except (KeyError, ValueError) as exc:
            raise CampaignFileError(f"{self.path.name}: [objective] observables: {exc}") from exc

    def _weights(self) -> Any:
        from .hep.chi2 import Weights

        spec = self.objective_spec.get("weights")
        if isinstance(spec, str):
            return Weights.from_file(str(self.resolve(spec)))
        if self.objective_type == "pythia":  # observables.yaml weights, then the file's
            return Weights({o.id: o.weight for o in self._observables()} | dict(spec or {}))
        return Weights(spec)

    def _pythia(self, reference: Mapping[str, Any]) -> Any:
        from .hep.pythia import PythiaSimulator

        spec = self.objective_spec
        return PythiaSimulator(self._observables(), reference,
                               n_events=spec.get("n_events", 5000),
                               seed=spec.get("seed", self.seed or 1),
                               n_workers=spec.get("n_workers", 1),
                               fixed=spec.get("fixed", {}))

    def closure_truth(self) -> dict[str, Any]:
        """The ``[closure] truth`` point (``"monash"``: Monash values of the parameters)."""
        truth = self.closure.get("truth")
        if truth == "monash":
            from .hep import lep

            try:
                return lep.monash_values(self.space.names, self.objective_spec.get("data"))
            except KeyError as exc:  # names the parameters without a Monash value
                raise CampaignFileError(
                    f"{self.path.name}: [closure] truth: {exc.args[0]}") from None
        if not isinstance(truth, dict):
            raise CampaignFileError(
                f"{self.path.name}: [closure] truth: expected a table of parameter values or "
                f"'monash', found {truth!r}")
        return dict(self.space.validate(truth))


def _parse_parameter(table: Table) -> Dimension:
    kind = table.get("type", (str,), "real")
    if kind not in ("real", "integer", "categorical"):
        table.fail(f"expected 'real', 'integer' or 'categorical', found {describe(kind)}",
                   "type")
    allowed = ["name", "type", "choices"] if kind == "categorical" else [
        "name", "type", "low", "high", "log"]
    table.check_keys(allowed)
    name = table.get("name", (str,), required=True)
    try:
        if kind == "categorical":
            return Categorical(name, table.get("choices", (list,), required=True))
        cls = Real if kind == "real" else Integer
        numbers = (int, float) if kind == "real" else (int,)
        low = table.get("low", numbers, required=True)
        high = table.get("high", numbers, required=True)
        return cls(name, low, high, log=table.get("log", (bool,), False))
    except BayestuneError as exc:
        if isinstance(exc, CampaignFileError):
            raise
        table.fail(str(exc))
        raise  # unreachable: fail() raises


def _parse_objective(table: Table, source: str) -> dict[str, Any]:
    kind = table.get("type", (str,), "python")
    common = ["type", "model_uncertainty", "weights", "correlated_sources"]
    allowed = {
        "python": ["type", "function", "options"],
        "histograms": [*common, "simulate", "simulate_options", "reference"],
        "command": [*common, "reference", "rundir", "cwd", *_COMMAND_KEYS],
        "pythia": [*common, "observables", "n_events", "n_workers", "data", "fixed", "seed"],
    }
    if kind not in allowed:
        table.fail(f"expected 'python', 'histograms', 'command' or 'pythia', found "
                   f"{describe(kind)}", "type")
    table.check_keys(allowed[kind])
    if kind == "python":
        table.get("function", (str,), required=True, expected="'module:attribute'")
        table.get("options", (dict,))
    if kind == "histograms":
        table.get("simulate", (str,), required=True, expected="'module:attribute'")
        table.get("simulate_options", (dict,))
        table.get("reference", (str, list), required=True, expected="a file or list of files")
    if kind == "command":
        _parse_command(table)
    if kind in ("histograms", "command", "pythia"):
        f = table.get("model_uncertainty", (float,), 0.0)
        if f < 0:
            table.fail(f"expected a number >= 0, found {describe(f)}", "model_uncertainty")
        table.get("weights", (str, dict))
        sources = table.get("correlated_sources", (list,))
        if sources is not None and not all(isinstance(v, str) and v for v in sources):
            table.fail(f"expected a list of error-source names or patterns such as ['sys*'], "
                       f"found {describe(sources)}", "correlated_sources")
    if kind == "pythia":
        table.get("observables", (str, list))
        table.positive_int("n_events")
        table.positive_int("n_workers")
        table.get("data", (str,))
        table.get("fixed", (dict,))
        table.positive_int("seed", minimum=0)
    return dict(table.data)


_COMMAND_KEYS = ("command", "outputs", "timeout", "seed", "n_events", "keep", "env", "fixed",
                 "shell")


def _parse_command(table: Table) -> None:
    """The keys of a ``type = "command"`` objective."""
    command = table.get("command", (str, list), required=True,
                        expected="a command template such as 'run.sh {params} {outdir}'")
    if isinstance(command, list) and not all(isinstance(t, str) for t in command):
        table.fail(f"expected a string or a list of strings, found {describe(command)}",
                   "command")
    table.get("reference", (str, list), required=True, expected="a file or list of files")
    outputs = table.get("outputs", (str, list))
    if isinstance(outputs, list) and not all(isinstance(t, str) for t in outputs):
        table.fail(f"expected glob patterns, found {describe(outputs)}", "outputs")
    for key in ("rundir", "cwd", "keep"):
        table.get(key, (str,))
    timeout = table.get("timeout", (float,))
    if timeout is not None and timeout <= 0:
        table.fail(f"expected a positive number of seconds, found {describe(timeout)}",
                   "timeout")
    table.positive_int("seed", minimum=0)
    table.positive_int("n_events")
    table.get("env", (dict,))
    table.get("fixed", (dict,))
    table.get("shell", (bool,))


def load_campaign(path: str | Path, *, store: str | Path | None = None) -> Campaign:
    """Read and validate a campaign file.

    Parameters
    ----------
    path : str or Path
        The TOML file.
    store : str or Path, optional
        Overrides ``[campaign] store``.

    Raises
    ------
    CampaignFileError
        Naming the file, the table, the key, what was expected and what was found.
    """
    path = Path(path)
    if not path.is_file():
        raise CampaignFileError(f"campaign file not found: {str(path)!r}")
    text = path.read_text()
    return parse_campaign(text, path, store=store)


def parse_campaign(text: str, path: str | Path, *, store: str | Path | None = None) -> Campaign:
    """Validate campaign TOML ``text`` as if read from ``path``."""
    path = Path(path).resolve()
    source = str(path.name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignFileError(f"{source}: not valid TOML: {exc}") from None
    top = Table(data, "top level", source)
    top.check_keys(list(_TABLES))

    camp = Table(data.get("campaign", {}), "[campaign]", source)
    camp.check_keys(["name", "n_evals", "store", "seed", "start", "uncertainty"])
    n_evals = camp.positive_int("n_evals", required=True)
    seed = camp.positive_int("seed", minimum=0)
    space = _parse_space(top, source)
    if "objective" not in data:
        top.fail("missing required table [objective]")
    objective = _parse_objective(Table(data["objective"], "[objective]", source), source)
    tuner_options = _parse_tuner(Table(data.get("tuner", {}), "[tuner]", source))
    surrogate = None
    if "surrogate" in data:
        surrogate = _parse_surrogate(Table(data["surrogate"], "[surrogate]", source))
    execution = _parse_execution(Table(data.get("execution", {}), "[execution]", source))
    closure = _parse_closure(Table(data.get("closure", {}), "[closure]", source))
    method = _method(data.get("method", {}), source, objective.get("type"), tuner_options,
                     camp.data)
    start = []
    for i, point in enumerate(camp.get("start", (list,), [])):
        try:
            start.append(space.validate(point))
        except BayestuneError as exc:
            camp.fail(f"point #{i + 1}: {exc}", "start")

    default_store = path.with_suffix(".sqlite")
    store_path = Path(store) if store is not None else (
        path.parent / camp.get("store", (str,), default_store.name))
    uncertainty = camp.get("uncertainty", (bool,), objective.get("type") != "python")
    return Campaign(path=path, text=text, space=space, n_evals=n_evals, store=store_path,
                    seed=seed, objective_spec=objective, tuner_options=tuner_options,
                    execution_options=execution, surrogate=surrogate, start=start,
                    closure=closure, uncertainty=uncertainty,
                    name=camp.get("name", (str,), path.stem), method=method)


def _parse_space(top: Table, source: str) -> Space:
    """The ``[[parameters]]`` tables as a :class:`Space`."""
    raw_params = top.get("parameters", (list,), required=True,
                         expected="a list of [[parameters]] tables")
    if not raw_params:
        top.fail("expected at least one [[parameters]] table", "parameters")
    dims = [_parse_parameter(Table(p, f"[[parameters]] #{i + 1}", source))
            for i, p in enumerate(raw_params)]
    try:
        return Space(dims)
    except BayestuneError as exc:
        raise CampaignFileError(f"{source}: [[parameters]]: {exc}") from None


def _parse_tuner(tuner: Table) -> dict[str, Any]:
    """The ``[tuner]`` table: keyword arguments of :class:`~bayestune.Tuner`."""
    tuner.check_keys(["engine", "acquisition", "n_initial", "initial_design", "noisy",
                      "max_consecutive_failures"])
    for key, allowed in (("engine", ENGINE_NAMES), ("acquisition", ("auto", *ACQUISITIONS)),
                         ("initial_design", INITIAL_DESIGNS)):
        value = tuner.get(key, (str,))
        if value is not None and value not in allowed:
            tuner.fail(f"expected one of {', '.join(map(repr, allowed))}, found "
                       f"{describe(value)}", key)
    tuner.positive_int("n_initial", minimum=2)
    tuner.get("noisy", (bool,))
    tuner.positive_int("max_consecutive_failures")
    return dict(tuner.data)


def _parse_surrogate(sur: Table) -> SurrogateConfig:
    """The ``[surrogate]`` table (the fields of :class:`SurrogateConfig`; ``"none"`` for
    no warping, trend or prior)."""
    sur.check_keys(list(SurrogateConfig.__dataclass_fields__))
    options = dict(sur.data)
    if "lengthscale_bounds" in options:
        options["lengthscale_bounds"] = tuple(options["lengthscale_bounds"])
    for key in ("warping", "trend", "noise_prior", "variance_prior"):
        if options.get(key) == "none":
            options[key] = None
    try:
        return SurrogateConfig(**options)
    except (BayestuneError, TypeError, ValueError) as exc:
        sur.fail(str(exc))


def _parse_execution(exe: Table) -> dict[str, Any]:
    """The ``[execution]`` table: workers, batches, timeout and retries."""
    exe.check_keys(["n_workers", "batch", "timeout", "retries"])
    exe.positive_int("n_workers")
    exe.get("batch", (bool,))
    timeout = exe.get("timeout", (float,))
    if timeout is not None and timeout <= 0:
        exe.fail(f"expected a positive number of seconds, found {describe(timeout)}", "timeout")
    exe.positive_int("retries", minimum=0)
    return dict(exe.data)


def _parse_closure(closure: Table) -> dict[str, Any]:
    """The ``[closure]`` table of ``bayestune closure``."""
    closure.check_keys(["truth", "pseudo_seed", "pseudo_events", "n_repeats",
                        "refine_rounds", "pseudo_errors"])
    if closure.get("pseudo_errors", (str,), "mc") not in ("mc", "data"):
        closure.fail(f"expected 'mc' or 'data', found {describe(closure.data['pseudo_errors'])}",
                     "pseudo_errors")
    closure.get("truth", (dict, str))
    closure.positive_int("pseudo_seed", minimum=0)
    closure.positive_int("pseudo_events")
    closure.positive_int("n_repeats")
    closure.positive_int("refine_rounds", minimum=0)
    return dict(closure.data)


def _method(data: Any, source: str, objective_type: Any, tuner_options: dict[str, Any],
            start_points: dict[str, Any]) -> Any:
    """The ``[method]`` table: ``type = "bo"`` (default: the tuner's Bayesian optimisation)
    or ``"generator"`` with the stage tables ``[method.explore]``, ``[method.refine]`` and
    ``[method.probe]`` (:class:`~bayestune.hep.tuning.GeneratorTuning`)."""
    from .hep.tuning import GeneratorTuning

    table = Table(data, "[method]", source)
    table.check_keys(["type", "explore", "refine", "probe"])
    kind = table.get("type", (str,), "bo")
    if kind not in ("bo", "generator"):
        table.fail(f"expected 'bo' or 'generator', found {describe(kind)}", "type")
    if kind == "bo":
        if set(table.data) - {"type"}:
            table.fail("stage tables need type = \"generator\"")
        return None
    if objective_type == "python":
        table.fail("the generator method fits histograms: it needs a histograms or pythia "
                   "objective", "type")
    if "start" in start_points:
        table.fail("[campaign] start is not used by the generator method (its explore "
                   "stage begins with a space-filling design); remove it", "type")
    if "engine" in tuner_options:
        table.fail("the generator method chooses its explore engine in [method.explore] "
                   "engine; remove [tuner] engine", "type")
    try:
        return GeneratorTuning.from_dict({k: v for k, v in table.data.items() if k != "type"})
    except (TypeError, ValueError) as exc:
        table.fail(str(exc))
