"""``quantdesk lab``: JupyterLab at the project root, on 127.0.0.1, URL printed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import quantdesk
from quantdesk.dashboards.lab import lab_launch

from ..conftest import free_port, wait_for_http

SRC = Path(quantdesk.__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("QUANTDESK_HOME")
    monkeypatch.delenv("QUANTDESK_REPORTS")
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.quantdesk]\n")
    return root


def test_lab_launch_is_the_projects(project: Path) -> None:
    launch = lab_launch(port=8899, extra=["--no-browser"], cwd=project / "notebooks", token="t")
    assert launch.root == project
    assert f"--ServerApp.root_dir={project}" in launch.argv
    assert "--ServerApp.ip=127.0.0.1" in launch.argv and launch.argv[-1] == "--no-browser"
    assert launch.argv[:3] == [sys.executable, "-m", "jupyterlab"]
    assert launch.url == "http://127.0.0.1:8899/lab?token=t"
    assert "t" not in launch.argv  # the token travels in the environment only
    assert launch.env["JUPYTER_TOKEN"] == "t"
    assert launch.env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def test_quantdesk_lab_serves_the_project_root(project: Path) -> None:
    """Started in a subfolder, with no QUANTDESK_* variable: the lab's root is the project."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}
    env["PYTHONPATH"] = str(SRC)
    env["JUPYTER_RUNTIME_DIR"] = str(project.parent / "runtime")
    cmd = [sys.executable, "-m", "quantdesk", "lab", "--port", str(port), "--no-browser"]
    # Extra arguments pass through; JupyterLab refuses root without this one (CI runs as root).
    cmd += ["--allow-root"] if os.geteuid() == 0 else []
    log = (project.parent / "lab.log").open("w")
    proc = subprocess.Popen(
        cmd, cwd=project / "notebooks", env=env, stdout=subprocess.PIPE, stderr=log, text=True
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].strip() == f"JupyterLab in {project}"
        assert f"store: {project / 'data' / 'quantdesk.duckdb'} (chosen by: project" in lines[1]
        url = lines[2].removeprefix("open: ").strip()
        assert url.startswith(f"http://127.0.0.1:{port}/lab?token=")
        token = url.split("token=", 1)[1]
        api = f"http://127.0.0.1:{port}/api/contents?token={token}"
        wait_for_http(api, proc)
        with urllib.request.urlopen(api, timeout=10) as resp:
            names = {item["name"] for item in json.load(resp)["content"]}
        assert names == {"pyproject.toml", "notebooks"}
        # Without the token the server refuses.
        assert wait_for_http(f"http://127.0.0.1:{port}/api/contents", ok=(403,)) == 403
        # The command is the server (an exec, not a child): stopping it stops JupyterLab,
        # and nothing is left listening on the port.
        proc.terminate()
        proc.wait(timeout=60)
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, "a JupyterLab outlived the command"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
        log.close()
