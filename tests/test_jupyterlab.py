"""The learner's path in a real JupyterLab, driven with headless Chromium: the README's command works,
lab 1 runs, "Check again" picks up a file written into the work folder, and the saved notebook is
readable when reopened with no kernel behind its widgets.

One JupyterLab server (127.0.0.1, a free port, no token) serves a temporary copy of the course
(``graders/`` and ``labs/``), so the test writes into a work folder that is not the checkout's, and
the kernel imports that copy exactly as a learner's notebook finds the package (no PYTHONPATH).
Screenshots land in ``_build/screenshots/jupyterlab/`` for a reviewer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = REPO / "_build" / "screenshots" / "jupyterlab"
NOTEBOOK = "lab01-expose-bookinfo.ipynb"
MIME_CHECK = "application/vnd.istio-gateway-course.check+json"
README_COMMAND = ".venv/bin/jupyter lab labs/"


# --- the setup installs JupyterLab (no browser needed) --------------------------------------------
def test_readme_command_is_installed_by_the_setup():
    """`make demo`/`make test` install requirements.txt; it must pin JupyterLab 4 so the README's
    `.venv/bin/jupyter lab labs/` works on a fresh clone."""
    assert README_COMMAND in (REPO / "README.md").read_text()
    pins = dict(line.split("==") for line in (REPO / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pins.get("jupyterlab", "").startswith("4."), "requirements.txt pins jupyterlab 4.x"
    jupyter = BIN / "jupyter"
    assert jupyter.is_file() and (BIN / "jupyter-lab").is_file(), "the README's binary exists in the venv"
    version = subprocess.run([str(jupyter), "lab", "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == pins["jupyterlab"]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"pip install .*-r requirements\.txt", makefile), "the venv is built from requirements.txt"


# --- a real JupyterLab --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"jupyter lab did not answer within {timeout} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL, root folder) of one JupyterLab serving a temporary copy of labs/ (graders/ beside it)."""
    if not (BIN / "jupyter-lab").is_file():
        pytest.skip("JupyterLab is not installed: `make venv` installs requirements.txt")
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(REPO / "graders", root / "graders", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "labs", root / "labs", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for work in (root / "labs").glob("lab*/work"):
        for f in work.iterdir():
            (shutil.rmtree if f.is_dir() else Path.unlink)(f)
    home = root / "home"  # outside the served labs/ folder
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRADERS_BATCH_OUT")}
    env.update({"HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
                "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
                "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "NO_PROXY": "127.0.0.1,localhost"})
    # No "get notified about Jupyter news?" toast over the screenshots (and no request for news).
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(BIN / "jupyter-lab"), "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",  # lets the test shut kernels down through the REST API
            f"--ServerApp.root_dir={root / 'labs'}", "--LabApp.check_for_updates_class="
            "jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    log = home / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=root / "labs", env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_ready(url, proc, log)
        yield url, root
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip("Chromium not installed: `make system-deps` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _page(browser, url: str, outside: list[str]):
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def route(r) -> None:
        if r.request.url.startswith(url):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return page


def _open_notebook(page, url: str, *, kernel: bool = True) -> str:
    """Open lab 1; answer JupyterLab's "Select Kernel" question as a learner would ("Select", or
    "No Kernel"); return the kernel status the status bar shows."""
    page.goto(f"{url}/lab/tree/{NOTEBOOK}", wait_until="domcontentloaded")
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=60_000)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=30_000)
    status = page.locator(".jp-StatusBar-Widget", has_text=re.compile("Python|No Kernel"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
        if dialog.count() and dialog.first.is_visible():
            dialog.locator("button", has_text=re.compile("^Select$" if kernel else "^No Kernel$")).click()
        text = status.first.text_content(timeout=1000) if status.count() else ""
        if (kernel and "Idle" in text) or (not kernel and "No Kernel" in text):
            return text
        page.wait_for_timeout(250)
    raise AssertionError(f"the notebook's kernel status did not settle: {text!r}")


def _running_kernels(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/kernels", timeout=5) as r:
        return json.loads(r.read())


def _shut_down(url: str) -> None:
    """Delete every session and kernel, as closing JupyterLab and reopening the file later would."""
    for what in ("sessions", "kernels"):
        with urllib.request.urlopen(f"{url}/api/{what}", timeout=5) as r:
            for item in json.loads(r.read()):
                req = urllib.request.Request(f"{url}/api/{what}/{item['id']}", method="DELETE")
                urllib.request.urlopen(req, timeout=10).close()


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).first.click()


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


@pytest.mark.browser
def test_run_lab1_check_again_save_and_reopen(lab_server, browser):
    url, root = lab_server
    outside: list[str] = []
    page = _page(browser, url, outside)
    _open_notebook(page, url)
    _menu(page, "Run", "Run All Cells")
    try:
        page.locator(".igc-lab").wait_for(timeout=60_000)
    except Exception:
        _shoot(page, "failed-run-all")
        raise
    panels = page.locator(".jp-OutputArea-output .igc-check")
    assert panels.count() >= 9, "every check cell shows its panel"
    assert page.locator(".igc-lab .igc-badge-failed").count() > 0, "an empty work folder fails"
    first = page.locator(".jp-OutputArea-output .igc-check").first
    assert "FAILED" in first.text_content() or "PASSED" in first.text_content()
    gateway_panel = page.locator(".jp-OutputArea-output > .igc-check, .jp-OutputArea-output .igc-check").filter(
        has_text="gateway-exists").first
    assert "FAILED" in gateway_panel.text_content()
    page.locator(".jp-Cell").filter(has=page.locator(".igc-check", has_text="gateway-exists")).first \
        .scroll_into_view_if_needed()
    _shoot(page, "01-run-all-empty-work-folder")

    # The learner writes the solution into the work folder and presses "Check again" under a check.
    for f in (REPO / "labs" / "lab01" / "solutions" / "reference").iterdir():
        shutil.copy(f, root / "labs" / "lab01" / "work" / f.name)
    cell = page.locator(".jp-Cell").filter(has=page.locator(".igc-check", has_text="gateway-exists")).first
    cell.locator("button", has_text="Check again").click()
    page.locator(".igc-check", has_text="gateway-exists").locator(".igc-badge-passed").first.wait_for(timeout=30_000)
    page.locator(".igc-lab", has_text="all checks passed").wait_for(timeout=30_000)
    failed_left = page.locator(".jp-OutputArea-output .igc-badge-failed").count()
    assert failed_left == 0, "every panel of the session was refreshed, not only the clicked one"
    _shoot(page, "02-check-again-after-writing-the-solution")

    _menu(page, "File", "Save Notebook")
    saved = root / "labs" / NOTEBOOK
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        nb = json.loads(saved.read_text())
        checks = [o["data"][MIME_CHECK] for c in nb["cells"] for o in c.get("outputs", [])
                  if MIME_CHECK in o.get("data", {})]
        if checks and all(c["passed"] for c in checks):
            break
        page.wait_for_timeout(300)  # not time.sleep: the page's requests pass through this test's route handler
    kinds = [sorted(o.get("data", {})) for c in nb["cells"] for o in c.get("outputs", [])]
    assert checks and all(c["passed"] for c in checks), f"the saved notebook holds the refreshed panels: {kinds}"
    page.close()

    # Reopened with no kernel behind the widgets: results and quiz questions are still there.
    _shut_down(url)
    page = _page(browser, url, outside)
    _open_notebook(page, url, kernel=False)
    if _running_kernels(url):  # JupyterLab started one for the notebook anyway: shut it down from the menu
        _menu(page, "Kernel", "Shut Down Kernel")
        deadline = time.monotonic() + 30
        while _running_kernels(url) and time.monotonic() < deadline:
            page.wait_for_timeout(250)
    assert _running_kernels(url) == [], "reopened with no kernel: nothing behind the widgets"
    page.locator(".igc-lab", has_text="all checks passed").wait_for(timeout=30_000)
    assert page.locator(".jp-OutputArea-output .igc-check").count() >= 9
    quizzes = page.locator(".igc-quiz")
    assert quizzes.count() >= 1
    for quiz in quizzes.all():
        assert re.search(r"a\) \S.*b\) \S.*Show the answer", quiz.text_content(), re.S), \
            "the question, its lettered options and the folded answer"
    for out in page.locator(".jp-Cell .jp-OutputArea").all():
        text = out.text_content().strip()
        if "model not found" in text:
            assert len(text) > len("Error displaying widget: model not found") + 20, "never the only content"
    page.locator(".jp-Cell").filter(has=page.locator(".igc-quiz")).first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    _shoot(page, "03-reopened-without-kernel")
    page.close()
    assert not outside, f"JupyterLab asked for something outside 127.0.0.1: {outside[:3]}"
