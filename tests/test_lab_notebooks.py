"""Every lab notebook: the notebook contract (parameters cell, metadata, no committed outputs), and
an end-to-end run with nbclient on the simulated cluster whose harvested result equals
``python -m graders check LAB <reference> -o json``."""

from __future__ import annotations

import ast
import contextlib
import io
import json
from pathlib import Path

import nbformat
import pytest

from graders.cli import main as cli_main
from graders.notebook import MIME_CHECK, MIME_LAB

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "labs").glob("lab[0-9][0-9]-*.ipynb"))
PARAMETERS = {"CONTEXT", "KUBECONFIG", "SNAPSHOT", "MANIFESTS"}


def lab_id(nb_path: Path) -> str:
    return nb_path.name.split("-", 1)[0]


def parameters_index(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged `parameters`"
    return tagged[0]


def cli_json(*args: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli_main(["check", *args, "-o", "json"])
    return json.loads(out.getvalue())


def execute(nb_path: Path, manifests: list[str], cwd: Path, monkeypatch) -> nbformat.NotebookNode:
    """Run the notebook as batch grading does: a cell injected after `parameters`, from another cwd."""
    from nbclient import NotebookClient

    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.insert(parameters_index(nb) + 1, nbformat.v4.new_code_cell(f"MANIFESTS = {manifests!r}"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the kernel imports graders from the checkout
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs_with(nb, mime: str) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "display_data" and mime in o.get("data", {})]


def test_there_are_lab_notebooks():
    assert {lab_id(p) for p in NOTEBOOKS} >= {"lab01", "lab02"}


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_contract(nb_path: Path):
    nb = nbformat.read(nb_path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["language_info"]["name"] == "python"
    assert nb.metadata["language_info"]["pygments_lexer"] == "ipython3"
    params = nb.cells[parameters_index(nb)]
    assigned = {t.id: t for node in ast.parse(params.source).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert set(assigned) == PARAMETERS
    for node in ast.parse(params.source).body:
        assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value is None
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit notebooks with empty outputs"
    assert "lab.report()" in nb.cells[-1].source


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_its_result_equals_the_check_command(nb_path: Path, tmp_path, monkeypatch):
    lab = lab_id(nb_path)
    reference = str(REPO / "labs" / lab / "solutions" / "reference")
    nb = execute(nb_path, [reference], tmp_path, monkeypatch)

    results = outputs_with(nb, MIME_LAB)
    assert len(results) == 1
    harvested = results[0]["data"][MIME_LAB]
    assert harvested == cli_json(lab, reference)
    assert harvested["score"] == harvested["max_score"] and harvested["mode"] == "simulated"

    by_id = {c["id"]: c for c in harvested["checks"]}
    checks = outputs_with(nb, MIME_CHECK)
    assert checks, "each step's check cell emits its result"
    for out in checks:
        payload = out["data"][MIME_CHECK]
        assert payload == by_id[payload["id"]]
        # The result is readable without HTML or widgets.
        assert payload["message"] in out["data"]["text/plain"]
        assert "✅" in out["data"]["text/plain"] or payload["status"] == "not-evaluated"  # lab 5's live-only log
    # With a live kernel every check cell also offers a "Check again" button (a widget view).
    check_cells = [c for c in nb.cells if c.cell_type == "code" and "lab.check(" in c.source]
    for cell in check_cells:
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in cell.outputs)


def test_a_wrong_attempt_shows_failures_and_hints_in_the_notebook(tmp_path, monkeypatch):
    nb_path = REPO / "labs" / "lab01-expose-bookinfo.ipynb"
    attempt = str(REPO / "labs" / "lab01" / "wrong" / "vs-other-namespace")
    nb = execute(nb_path, [attempt], tmp_path, monkeypatch)
    harvested = outputs_with(nb, MIME_LAB)[0]["data"][MIME_LAB]
    assert harvested == cli_json("lab01", attempt)
    bound = next(o for o in outputs_with(nb, MIME_CHECK) if o["data"][MIME_CHECK]["id"] == "vs-bound")
    assert bound["data"][MIME_CHECK]["passed"] is False
    text, page = bound["data"]["text/plain"], bound["data"]["text/html"]
    assert "❌" in text and "💡 hint:" in text and bound["data"][MIME_CHECK]["hint"] in text
    assert "Still stuck? Another hint" in page and "<details" in page
