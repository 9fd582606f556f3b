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


# --- saved notebooks stay readable; panels say when they ran and never go stale ------------------
WIDGET = "application/vnd.jupyter.widget-view+json"
EMOJI = [chr(c) for c in (0x2705, 0x274C, 0x23ED, 0x1F4A1, 0xFE0F)]


def test_widgets_are_outputs_of_their_own_beside_readable_panels_and_questions(tmp_path, monkeypatch):
    """Reopened without a kernel a widget output shows only "model not found": every result and every
    quiz question must be in an output of its own, readable as HTML and as text."""
    nb_path = REPO / "labs" / "lab01-expose-bookinfo.ipynb"
    nb = execute(nb_path, [str(REPO / "labs" / "lab01" / "solutions" / "reference")], tmp_path, monkeypatch)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    widgets = [o for o in outputs if WIDGET in o.get("data", {})]
    assert widgets, "a live kernel offers buttons"
    for o in widgets:
        assert set(o["data"]) <= {WIDGET, "text/plain"}, "a widget output carries nothing a reader needs"
    quiz_cells = [c for c in nb.cells if c.cell_type == "code" and "quiz(" in c.source]
    assert quiz_cells
    for cell in quiz_cells:
        readable = [o for o in cell.outputs if "text/html" in o.get("data", {})]
        assert len(readable) == 1 and "a) " in readable[0]["data"]["text/html"]
        assert "Answer: " in readable[0]["data"]["text/plain"]
        assert any(WIDGET in o.get("data", {}) for o in cell.outputs), "answer buttons beside the question"
    for o in outputs_with(nb, MIME_CHECK) + outputs_with(nb, MIME_LAB):
        assert "graded at " in o["data"]["text/html"] and "graded at " in o["data"]["text/plain"]
        assert not any(e in o["data"]["text/html"] for e in EMOJI), "no emoji: headless browsers lack the font"
        assert "igc-badge-passed" in o["data"]["text/html"]


def test_each_status_has_its_own_marker():
    from graders.checks import CheckResult
    from graders.notebook import STATUS_STYLE, check_html

    words = {s: STATUS_STYLE[s][0] for s in STATUS_STYLE}
    assert len(set(words.values())) == len(words) and len({v[1] for v in STATUS_STYLE.values()}) == len(words)
    cases = {"passed": CheckResult("a", "A", 2, True, "ok."),
             "failed": CheckResult("b", "B", 2, False, "no.", ("Look at `spec.hosts`.", "More.")),
             "blocked": CheckResult("c", "C", 2, False, "skipped: needs “B” first.", (), True)}
    for status, chk in cases.items():
        page = check_html(chk)
        assert f"igc-badge-{status}" in page and f">{words[status]}</span>" in page
        assert ("<strong>Hint:</strong> Look at <code>spec.hosts</code>." in page) == (status == "failed")
        assert not any(e in page for e in EMOJI)


def test_not_evaluated_checks_are_marked_and_not_counted():
    """h3's fourth status: a check that needs a live cluster, left out of max_score off-cluster."""
    from graders.checks import CheckResult
    from graders.notebook import check_html

    class NotEvaluated(CheckResult):
        @property
        def status(self) -> str:
            return "not-evaluated"

    page = check_html(NotEvaluated("live-only", "Live", 3, False, "needs a live cluster."))
    assert "igc-badge-not-evaluated" in page and ">NOT EVALUATED</span>" in page and "not counted" in page


STALE_NOTEBOOK = [
    "from graders.notebook import LabSession\nlab = LabSession('lab01', MANIFESTS=[{work!r}])",
    "lab.check('vs-bound')",
    "import shutil\nshutil.rmtree({work!r})\nshutil.copytree({fix!r}, {work!r})",
    "lab.report()",
]


def test_the_report_refreshes_earlier_check_panels(tmp_path, monkeypatch):
    """After a fix, the check cell run before it must not stay red while the report says all passed."""
    import shutil

    from nbclient import NotebookClient

    work = tmp_path / "work"
    shutil.copytree(REPO / "labs" / "lab01" / "wrong" / "vs-other-namespace", work)
    fix = str(REPO / "labs" / "lab01" / "solutions" / "reference")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.format(work=str(work), fix=fix)) for src in STALE_NOTEBOOK]
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.delenv("GRADERS_BATCH_OUT", raising=False)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    panel = next(o for o in nb.cells[1].outputs if MIME_CHECK in o.get("data", {}))
    report = next(o for o in nb.cells[3].outputs if MIME_LAB in o.get("data", {}))
    assert report["data"][MIME_LAB]["score"] == report["data"][MIME_LAB]["max_score"]
    assert panel["data"][MIME_CHECK]["passed"] is True, "the earlier panel was refreshed to the new grading"
    assert "igc-badge-passed" in panel["data"]["text/html"]
    stamp = report["data"]["text/html"].rsplit("graded at ", 1)[1].split("<", 1)[0]
    assert f"graded at {stamp}" in panel["data"]["text/html"], "the panel says which grading it shows"


def test_the_report_does_not_say_all_checks_passed_when_one_was_not_evaluated():
    """Off a live cluster lab 5's access-log check is not evaluated: its panel says so, and the report's
    headline must agree with `python -m graders check` ("all evaluated checks passed"), not claim all."""
    from graders.labs import get, lab_dir, run
    from graders.notebook import lab_html

    result = run("lab05", paths=[str(lab_dir(get("lab05")) / "solutions" / "reference")])
    assert result.all_passed and any(c.status == "not-evaluated" for c in result.checks)
    page = lab_html(result)
    assert "(all evaluated checks passed)" in page and "(all checks passed)" not in page
    lab01 = run("lab01", paths=[str(lab_dir(get("lab01")) / "solutions" / "reference")])
    assert "(all checks passed)" in lab_html(lab01)
