"""The pre-commit hooks check what `make lint` checks and strip notebook outputs.

pre-commit builds its hook environments from PyPI, which a test must not need; so each
hook's entry runs here from the tools `make install` puts beside Python, after checking
that the hook pins the version installed (a hook that drifted from `make lint` fails).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _hooks() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def _run(hook: dict[str, Any], files: list[Path]) -> subprocess.CompletedProcess[str]:
    tool, *args = shlex.split(hook["entry"])
    exe = BIN / tool if (BIN / tool).exists() else shutil.which(tool)
    assert exe, f"{tool} is not installed beside {sys.executable}"
    return subprocess.run(
        [str(exe), *args, *map(str, files)], capture_output=True, text=True, cwd=ROOT
    )


def test_the_hooks_pin_the_installed_tools() -> None:
    hooks = _hooks()
    assert {"ruff-check", "ruff-format", "nbstripout"} <= set(hooks)
    for hook in hooks.values():
        for dep in hook.get("additional_dependencies", []):
            name, pinned = re.fullmatch(r"([\w-]+)==([\w.]+)", dep).groups()  # type: ignore[union-attr]
            assert version(name) == pinned, f"{hook['id']} pins {dep}, installed {version(name)}"


def test_the_ruff_hooks_pass_on_the_tree_and_catch_a_bad_file(tmp_path: Path) -> None:
    hooks = _hooks()
    tracked = subprocess.run(
        ["git", "ls-files", "src", "tests", "benchmarks"], capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    files = [
        ROOT / f for f in tracked if f.endswith(".py") and re.match(hooks["ruff-check"]["files"], f)
    ]
    if not files:
        pytest.skip("not a git checkout")
    for hook_id in ("ruff-check", "ruff-format"):
        result = _run(hooks[hook_id], files)
        assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx=1\n", encoding="utf-8")
    assert _run(hooks["ruff-check"], [bad]).returncode != 0  # unused import
    assert _run(hooks["ruff-format"], [bad]).returncode != 0  # x=1 is not formatted


def test_the_notebook_hook_strips_outputs_and_keeps_the_notebook(tmp_path: Path) -> None:
    hook = _hooks()["nbstripout"]
    source = ROOT / "notebooks" / "quickstart.ipynb"
    clean = json.loads(source.read_text(encoding="utf-8"))
    run = json.loads(json.dumps(clean))
    for n, cell in enumerate(c for c in run["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = n + 1
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["secret\n"]}]
    path = tmp_path / "run.ipynb"
    path.write_text(json.dumps(run, indent=1), encoding="utf-8")

    assert _run(hook, [path]).returncode == 0
    stripped = json.loads(path.read_text(encoding="utf-8"))
    assert stripped["cells"] == clean["cells"]  # sources, ids, tags kept; outputs gone
    assert stripped["metadata"]["kernelspec"] == clean["metadata"]["kernelspec"]


def test_every_notebook_in_the_project_is_stored_stripped() -> None:
    hook = _hooks()["nbstripout"]
    notebooks = sorted((ROOT / "notebooks").rglob("*.ipynb"))
    assert notebooks
    tool, *args = shlex.split(hook["entry"])
    result = subprocess.run(
        [str(BIN / tool), *args, "--verify", *map(str, notebooks)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
