"""``quantdesk voila``: the bind rule, the token, and no file served outside the notebook's folder.

One real Voila server (``python -m quantdesk voila``, preheated kernel, token from the
environment) on a free 127.0.0.1 port serves a markdown notebook; requests go through
``http.client`` with raw paths so that nothing normalises ``..`` away before the server
sees it (the Voila advisory GHSA-2q59-h24c-w6fg).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantdesk.dashboards.voila import TOKEN_ENV, voila_argv

from ..conftest import free_port, wait_for_http

TOKEN = "t0ken-for-the-voila-test"
SECRET = "SECRET-OUTSIDE-THE-APP-4f1c"
INSIDE = "TEXT-INSIDE-THE-APP-9d2e"


def markdown_notebook(path: Path, text: str = "# Hello from Voila") -> Path:
    """Return ``path`` after writing a notebook of one markdown and one print cell."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell(text), new_code_cell("print('kernel says hi')")])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def start_voila(
    notebook: Path, port: int, env: dict[str, str], *extra: str, cwd: Path | None = None
) -> subprocess.Popen:
    """Return a running ``python -m quantdesk voila`` process (stdout and stderr merged)."""
    return subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "voila", str(notebook), "--port", str(port), *extra],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("voila")
    app = root / "app"
    app.mkdir()
    notebook = markdown_notebook(app / "hello.ipynb")
    (root / "secret.txt").write_text(SECRET)
    (root / "secret.png").write_text(SECRET)  # an allow-listed suffix, outside the folder
    (app / "inside.txt").write_text(INSIDE)
    (app / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    port = free_port()
    env = {**os.environ, TOKEN_ENV: TOKEN, "QUANTDESK_HOME": str(root / "home")}
    proc = start_voila(notebook, port, env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/?token={TOKEN}", proc)
        yield {"port": port, "proc": proc, "root": root}
    finally:
        stop(proc)


def raw_get(port: int, path: str, token: str | None = TOKEN) -> tuple[int, bytes]:
    """Return the status and body of GET ``path``, sent byte for byte as written."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        if token:
            conn.putheader("Authorization", f"token {token}")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_serves_the_notebook_with_the_token_only(server: dict) -> None:
    status, body = raw_get(server["port"], "/")
    assert status == 200
    assert b"Hello from Voila" in body
    assert b"kernel says hi" in body  # the preheated kernel ran the notebook
    status, body = raw_get(server["port"], "/", token=None)
    assert status in (302, 403), status
    assert b"kernel says hi" not in body
    status, _ = raw_get(server["port"], "/", token="wrong")
    assert status in (302, 403)


def test_token_never_reaches_the_command_line(server: dict) -> None:
    cmdline = Path(f"/proc/{server['proc'].pid}/cmdline").read_bytes()
    assert TOKEN.encode() not in cmdline
    assert TOKEN not in " ".join(voila_argv(server["root"] / "app" / "hello.ipynb"))


TRAVERSALS = [
    "/voila/static/../../../../../../../../etc/passwd",
    "/voila/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/voila/static/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/voila/static/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/voila/static/..%5c..%5c..%5c..%5cetc%5cpasswd",
    "/voila/templates/lab/static/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/voila/files/../secret.txt",
    "/voila/files/..%2fsecret.txt",
    "/voila/files/..%2f..%2fsecret.txt",
    "/voila/files/%2e%2e%2fsecret.png",
    "/voila/files/..%2fsecret.png",
    "/voila/files//etc/passwd",
    "/voila/files/%2fetc%2fpasswd",
    "/voila/labextensions/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/voila/tree/..%2f",
    "/voila/render/..%2fsecret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_gets_no_file_outside_the_folder(server: dict, path: str) -> None:
    status, body = raw_get(server["port"], path)
    assert status != 200 or (SECRET.encode() not in body and b"root:" not in body), status
    assert SECRET.encode() not in body
    assert b"root:x:0:0" not in body


def test_files_serves_images_of_the_folder_and_nothing_else(server: dict) -> None:
    port = server["port"]
    status, body = raw_get(port, "/voila/files/logo.svg")
    assert status == 200 and body.startswith(b"<svg")
    for path in ("/voila/files/inside.txt", "/voila/files/hello.ipynb"):
        status, body = raw_get(port, path)
        assert status == 403, (path, status)
        assert INSIDE.encode() not in body and b'"cells"' not in body
    # No directory listing or contents API to browse with.
    for path in ("/api/contents", "/api/contents/..", "/tree", "/voila/tree"):
        status, body = raw_get(port, path)
        assert b"secret.txt" not in body, path
        if status == 200:
            assert "secret" not in json.dumps(body.decode(errors="replace"))


def test_other_address_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    notebook = markdown_notebook(tmp_path / "hello.ipynb")
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "quantdesk", "voila", str(notebook), "--address", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "refuses to listen on '0.0.0.0' without authentication" in proc.stderr
    assert "QUANTDESK_VOILA_TOKEN" in proc.stderr


def test_a_missing_notebook_is_an_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "quantdesk", "voila", str(tmp_path / "nope.ipynb")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "no notebook at" in proc.stderr


def test_argv_serves_the_notebook_folder_with_preheated_kernels(tmp_path: Path) -> None:
    notebook = markdown_notebook(tmp_path / "hello.ipynb")
    argv = voila_argv(notebook, port=9999)
    assert argv[0] == str(notebook.resolve())
    assert f"--Voila.root_dir={tmp_path.resolve()}" in argv
    assert {"--preheat_kernel=True", "--pool_size=1", "--no-browser", "--port=9999"} <= set(argv)
    assert "--Voila.ip=127.0.0.1" in argv


def test_argv_skips_the_lab_extensions_the_notebook_says_it_does_not_use(tmp_path: Path) -> None:
    import nbformat

    notebook = markdown_notebook(tmp_path / "hello.ipynb")
    plain = voila_argv(notebook)
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["quantdesk"] = {"skip_lab_extensions": ["jupyterlab-plotly", "anywidget"]}
    nbformat.write(nb, notebook)
    [denied] = [a for a in voila_argv(notebook) if a.startswith("--VoilaConfiguration.ext")]
    assert denied.endswith("['@pyviz/jupyterlab_pyviz', 'jupyterlab-plotly', 'anywidget']")
    assert [a for a in plain if a.startswith("--VoilaConfiguration.ext")] == [
        "--VoilaConfiguration.extension_denylist=['@pyviz/jupyterlab_pyviz']"
    ]
    nb.metadata["quantdesk"] = {"skip_lab_extensions": "jupyterlab-plotly"}
    nbformat.write(nb, notebook)
    with pytest.raises(ValueError, match=r"hello\.ipynb: metadata\.quantdesk\.skip_lab_extensions"):
        voila_argv(notebook)


def test_the_explorer_apps_skip_the_plotly_and_anywidget_extensions() -> None:
    from quantdesk.dashboards.voila import skipped_extensions

    apps = Path(__file__).resolve().parents[2] / "notebooks" / "dashboards"
    for name in ("regime_explorer", "strategy_explorer"):
        assert skipped_extensions(apps / f"{name}.ipynb") == ["jupyterlab-plotly", "anywidget"]
