"""The bayestune command line, in subprocesses: run, status, resume, report, closure, errors."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from campaigns import BRANIN

from bayestune.campaign import CampaignFileError, load_campaign, parse_campaign

HISTOGRAMS = """
[campaign]
n_evals = 8
seed = 2

[[parameters]]
name = "mean"
type = "real"
low = -1.0
high = 1.0

[[parameters]]
name = "width"
type = "real"
low = 0.5
high = 2.0

[objective]
type = "histograms"
simulate = "bayestune.testfunctions:GaussianPeakSimulator"
simulate_options = { n_events = 4000, seed = 1 }
reference = "ref.yoda"
model_uncertainty = 0.02

[closure]
truth = { mean = 0.3, width = 1.1 }
pseudo_events = 16000
"""


def bayestune(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bayestune.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _n_trials(store: Path) -> int:
    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


@pytest.mark.parametrize("command", [[], ["run"], ["resume"], ["status"], ["report"],
                                     ["closure"]])
def test_help_everywhere(command, tmp_path):
    proc = bayestune(*command, "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "usage: bayestune" in proc.stdout


def test_run_status_resume_and_report(tmp_path):
    (tmp_path / "branin.toml").write_text(BRANIN)
    run = bayestune("run", "branin.toml", "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    store = tmp_path / "branin.sqlite"
    assert _n_trials(store) == 8
    assert "Result(success" in run.stdout and run.stderr == ""  # quiet: no progress bar

    status = bayestune("status", "branin.sqlite", cwd=tmp_path)
    assert status.returncode == 0
    assert "8 complete, 0 failed, 0 pending" in status.stdout
    assert re.search(r"best:\s+trial \d+, value", status.stdout)

    # rerunning the file with a larger budget resumes; so does 'resume' with the file named
    again = bayestune("run", "branin.toml", "--evals", "10", cwd=tmp_path)
    assert again.returncode == 0 and _n_trials(store) == 10
    assert "resuming" in again.stderr and "eval" in again.stderr  # progress bar on stderr
    # the store alone names Python code: resuming from it would import that code
    alone = bayestune("resume", "branin.sqlite", "--evals", "11", "-q", cwd=tmp_path)
    assert alone.returncode == 2 and "bayestune.testfunctions:branin" in alone.stderr
    assert _n_trials(store) == 10
    resumed = bayestune("resume", "branin.sqlite", "--campaign", "branin.toml", "--evals",
                        "11", "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _n_trials(store) == 11

    report = bayestune("report", "branin.sqlite", "--out", "rep", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    for name in ("convergence", "lengthscales", "slices"):
        png = tmp_path / "rep" / f"{name}.png"
        assert png.stat().st_size > 5000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"src='{name}.png'" in html
    assert html.count("<tr><td>") == 11  # one row per trial


def test_histogram_campaign_report_has_ratios_profiles_and_corner(tmp_path):
    from bayestune.hep import write_yoda
    from bayestune.testfunctions import GaussianPeakSimulator

    write_yoda(GaussianPeakSimulator(100_000, seed=9)({"mean": 0.3, "width": 1.1}),
               tmp_path / "ref.yoda")
    (tmp_path / "hist.toml").write_text(HISTOGRAMS)
    assert bayestune("run", "hist.toml", "-q", cwd=tmp_path).returncode == 0
    report = bayestune("report", "hist.sqlite", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    folder = tmp_path / "hist_report"
    html = (folder / "index.html").read_text()
    for name in ("ratios", "profiles", "corner", "correlation"):
        assert (folder / f"{name}.png").stat().st_size > 5000
        assert f"src='{name}.png'" in html
    assert "Uncertainties" in html and "hessian_positive_definite" in html

    closure = bayestune("closure", "hist.toml", "--out", "pulls.png", cwd=tmp_path)
    assert closure.returncode in (0, 1), closure.stderr  # 1 = the closure did not close
    assert "pull" in closure.stdout and "truth" in closure.stdout
    assert (tmp_path / "pulls.png").stat().st_size > 0
    # a level-1 closure: the pseudo-data take on the reference's errors
    (tmp_path / "hist.toml").write_text(HISTOGRAMS + 'pseudo_errors = "data"\n')
    level1 = bayestune("closure", "hist.toml", cwd=tmp_path)
    assert level1.returncode in (0, 1), level1.stderr
    assert "pull" in level1.stdout


GENERATOR = HISTOGRAMS.replace("n_evals = 8", "n_evals = 40") + """
[method]
type = "generator"
explore = { runs = 16, engine = "gp" }
refine = { n_per_round = 8 }
"""


def test_generator_method_from_a_campaign_file(tmp_path):
    """run, report and closure with [method] type = "generator": the hard budget, the stage
    log, the method's own estimate in the report, and the closure's estimate equal to the
    Python call's with the same seed."""
    from bayestune.closure import closure_test
    from bayestune.hep import ExploreStage, GeneratorTuning, RefineStage, write_yoda
    from bayestune.testfunctions import GaussianPeakSimulator

    write_yoda(GaussianPeakSimulator(100_000, seed=9)({"mean": 0.3, "width": 1.1}),
               tmp_path / "ref.yoda")
    (tmp_path / "gen.toml").write_text(GENERATOR)
    run = bayestune("run", "gen.toml", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert _n_trials(tmp_path / "gen.sqlite") == 40
    assert "of a budget of 40, 160,000 events" in run.stdout and "refine" in run.stdout
    again = bayestune("run", "gen.toml", "-q", cwd=tmp_path)  # finished: nothing runs
    assert again.returncode == 0 and _n_trials(tmp_path / "gen.sqlite") == 40
    report = bayestune("report", "gen.sqlite", "--out", "rep", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "Generator tune" in html and "final-fit" in html
    assert "Delta chi2 = 1 on the surrogate" not in html  # not the GP's uncertainty

    closure = bayestune("closure", "gen.toml", cwd=tmp_path)
    assert closure.returncode in (0, 1), closure.stderr
    assert "of a budget of 40" in closure.stdout
    tuned = dict(re.findall(r"^(mean|width)\s+\S+\s+(\S+)", closure.stdout, re.M))
    method = GeneratorTuning(explore=ExploreStage(runs=16, engine="gp"),
                             refine=RefineStage(n_per_round=8))
    sim = GaussianPeakSimulator(n_events=4000, seed=1)

    def pseudo_data(truth, seed):
        return sim.replicate(seed=seed, n_events=16000)(truth)

    res = closure_test(sim, load_campaign(tmp_path / "gen.toml").space,
                       {"mean": 0.3, "width": 1.1}, method=method, n_evals=40, seed=2,
                       pseudo_data=pseudo_data, model_uncertainty=0.02)
    for name in ("mean", "width"):
        assert float(tuned[name]) == pytest.approx(res.estimate[name], rel=1e-3)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t + '\n[method]\ntype = "professor"\n',
         r"\[method\] type: expected 'bo' or 'generator', found 'professor'"),
        (lambda t: t + '\n[method]\ntype = "generator"\nrefine = { widht = 3 }\n',
         r"\[method\]: unknown option\(s\) \['widht'\] of the refine stage"),
        (lambda t: t + '\n[method]\ntype = "generator"\nexplore = { fraction = 2.0 }\n',
         r"\[method\]: explore.fraction must be a number in \[0.05, 0.95\], got "
         r"explore.fraction=2.0"),
        (lambda t: t + '\n[method]\nrefine = { width = 3 }\n',
         r'\[method\]: stage tables need type = "generator"'),
    ],
)
def test_bad_method_tables_name_the_key(edit, message):
    with pytest.raises(CampaignFileError, match=message):
        parse_campaign(edit(HISTOGRAMS), Path("hist.toml"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("[campaign]", "[campaing]"),
         "top level: unknown key 'campaing'; expected one of campaign, parameters"),
        (lambda t: t.replace("n_evals = 8", 'n_evals = "8"'),
         r"\[campaign\] n_evals: expected an integer >= 1, found '8' \(a string\)"),
        (lambda t: t.replace("n_evals = 8\n", ""),
         r"\[campaign\]: missing required key 'n_evals'"),
        (lambda t: t.replace("low = 0.0", "low = 20.0"),
         r"\[\[parameters\]\] #2: lower bound must be < upper bound, got low=20.0, high=15.0"),
        (lambda t: t.replace('type = "python"', 'type = "fortran"'),
         r"\[objective\] type: expected 'python', 'histograms', 'command' or 'pythia', found "
         r"'fortran'"),
        (lambda t: t + "\n[execution]\nn_workers = 0\n",
         r"\[execution\] n_workers: expected an integer >= 1, found 0"),
        (lambda t: t + "\n[execution]\nthreads = 2\n",
         r"\[execution\]: unknown key 'threads'; expected one of n_workers, batch"),
        (lambda t: t.replace("bayestune.testfunctions:branin", "no_such_module:f"),
         r"\[objective\] function: cannot import module 'no_such_module'"),
        (lambda t: t + "\n[surrogate]\nkernel = 'cubic'\n", r"\[surrogate\]: .*kernel"),
        (lambda t: t + "\n[surrogate]\nnoise_prior = [0.5, 3]\n",
         r"\[surrogate\]: noise_prior must be .*got noise_prior=\[0.5, 3\]"),
        (lambda t: t.replace("seed = 1", "seed = [1"), "not valid TOML"),
        (lambda t: t + "\n[closure]\nrefine_rounds = -1\n",
         r"\[closure\] refine_rounds: expected an integer >= 0, found -1"),
        (lambda t: t + "\n[closure]\npseudo_errors = 'exp'\n",
         r"\[closure\] pseudo_errors: expected 'mc' or 'data', found 'exp'"),
    ],
)
def test_bad_campaign_files_exit_2_with_one_precise_line(edit, message, tmp_path):
    (tmp_path / "bad.toml").write_text(edit(BRANIN))
    proc = bayestune("run", "bad.toml", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayestune: error: bad.toml: ")
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "bad.sqlite").exists()


def test_failing_campaign_exits_1_with_the_reason(tmp_path):
    (tmp_path / "boom.py").write_text("def objective(p):\n    raise RuntimeError('no license')\n")
    text = BRANIN.replace('function = "bayestune.testfunctions:branin"\noptions = {}',
                          'function = "boom:objective"')
    (tmp_path / "boom.toml").write_text(text + "\n[tuner]\nmax_consecutive_failures = 3\n")
    proc = bayestune("run", "boom.toml", "-q", cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "last 3 evaluations all failed" in lines[0]
    assert "no license" in lines[0]


def test_missing_files_are_clear_errors(tmp_path):
    assert bayestune("run", "nope.toml", cwd=tmp_path).returncode == 2
    status = bayestune("status", "nope.sqlite", cwd=tmp_path)
    assert status.returncode == 1 and "no campaign store at 'nope.sqlite'" in status.stderr
    assert not (tmp_path / "nope.sqlite").exists()


def test_campaign_paths_are_relative_to_the_file(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "c.toml").write_text(BRANIN.replace('name = "branin-cli"',
                                                  'name = "x"\nstore = "runs/c.sqlite"'))
    campaign = load_campaign(folder / "c.toml")
    assert campaign.store == folder.resolve() / "runs" / "c.sqlite"
    assert campaign.resolve("ref.yoda") == folder.resolve() / "ref.yoda"
    with pytest.raises(CampaignFileError, match="point #1: .*missing"):
        parse_campaign(BRANIN.replace("seed = 1", "seed = 1\nstart = [{ x1 = 1.0 }]"),
                       folder / "c.toml")


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "examples"
                                         / "campaigns").glob("*.toml")), ids=lambda p: p.name)
def test_the_example_campaign_files_are_valid(path):
    campaign = load_campaign(path)
    assert campaign.n_evals >= 1 and len(campaign.space) >= 1


def test_the_surrogate_priors_from_a_campaign_file():
    text = BRANIN + "\n[surrogate]\nnoise_prior = [2, 10]\nlengthscale_prior = false\n"
    config = parse_campaign(text, "c.toml").surrogate
    assert config.noise_prior == (2.0, 10.0) and config.lengthscale_prior is False
    none = parse_campaign(BRANIN + '\n[surrogate]\nnoise_prior = "none"\n', "c.toml")
    assert none.surrogate.noise_prior is None
