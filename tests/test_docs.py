"""The documentation builds with warnings as errors, and its tutorials run as printed.

Conventions of the pages (stated here because this test relies on them):

* a fenced block with ``title="NAME"`` is a file the reader creates: it is written to NAME;
* an untitled ``python`` block is executed; all blocks of a page share one namespace;
* a ``bash`` block is executed line by line (comments and blank lines skipped);
* ``shell``, ``text`` and ``toml`` blocks without a title are shown only (installs, sketches).

Everything runs in a fresh directory, in document order, in one subprocess per page.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)

PAGES = [
    "getting-started.md",
    "tutorials/quickstart.md",
    "tutorials/uncertainties.md",
    "tutorials/cluster.md",
    "tutorials/nn-hyperparameters.md",
    "tutorials/pythia-closure.md",
    "tutorials/aleph-tune.md",
]

DRIVER = textwrap.dedent(
    """
    import json, subprocess, sys


    def main():
        steps = json.load(open(sys.argv[1]))
        namespace = {"__name__": "__main__"}
        for kind, arg, body in steps:
            if kind == "file":
                with open(arg, "w") as f:
                    f.write(body)
            elif kind == "python":
                exec(compile(body, "<tutorial block>", "exec"), namespace)
            elif kind == "bash":
                for line in body.splitlines():
                    line = line.split(" #")[0].strip()
                    if not line or line.startswith("#"):
                        continue
                    print("$", line, flush=True)
                    code = subprocess.run(line, shell=True).returncode
                    allowed = (0, 1) if line.startswith("bayestune closure") else (0,)
                    if code not in allowed:
                        sys.exit(f"command failed with exit code {code}: {line}")
        print("TUTORIAL OK")


    if __name__ == "__main__":  # worker processes re-import this file
        main()
    """
)


def tutorial_steps(page: Path) -> list[tuple[str, str, str]]:
    """The executable steps of a page: ``(kind, argument, body)`` in document order."""
    steps = []
    for lang, info, body in FENCE.findall(page.read_text()):
        title = re.search(r'title="([^"]+)"', info)
        if title:
            steps.append(("file", title.group(1), body))
        elif lang in ("python", "bash"):
            steps.append((lang, "", body))
    return steps


def test_every_tutorial_page_is_executed_here():
    pages = {str(p.relative_to(DOCS)) for p in (DOCS / "tutorials").glob("*.md")}
    assert pages <= set(PAGES), f"tutorial pages not run by this test: {pages - set(PAGES)}"


def test_fence_parser_sees_titles_languages_and_order(tmp_path):
    page = tmp_path / "page.md"
    page.write_text('```toml title="a.toml"\nx = 1\n```\n\ntext\n\n```python\nprint(1)\n```\n'
                    '```shell\npip install x\n```\n```bash\nls\n```\n')
    assert tutorial_steps(page) == [("file", "a.toml", "x = 1\n"), ("python", "", "print(1)\n"),
                                    ("bash", "", "ls\n")]


@pytest.mark.parametrize("name", PAGES)
def test_tutorial_runs_as_printed(name, tmp_path):
    steps = tutorial_steps(DOCS / name)
    assert steps, f"{name} has no executable blocks"
    if "pythia" in json.dumps(steps):
        pytest.importorskip("pythia8mc")
        from bayestune.hep import lep

        try:
            lep.find_data_dir()
        except Exception as exc:  # noqa: BLE001 - no LEP data on this machine
            pytest.skip(f"LEP reference data not found: {exc}")
    (tmp_path / "steps.json").write_text(json.dumps(steps))
    (tmp_path / "driver.py").write_text(DRIVER)
    env = dict(os.environ, MPLBACKEND="Agg",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([sys.executable, "driver.py", "steps.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "TUTORIAL OK" in proc.stdout, (
        f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def test_docs_build_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocs")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    html = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "estimate_uncertainty" in html and "HistogramObjective" in html


def test_every_docs_page_that_readme_and_cli_help_name_exists():
    from bayestune.cli import build_parser

    texts = [(ROOT / "README.md").read_text(), build_parser().format_help()]
    named = {m for text in texts for m in re.findall(r"docs/[\w./-]+\.md", text)}
    assert named, "the README names documentation pages"
    missing = sorted(p for p in named if not (ROOT / p).is_file())
    assert not missing, missing
