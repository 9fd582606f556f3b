"""Pure notebook transformations for batch grading: inject a learner's target after the
``parameters`` cell (papermill style), clear stored outputs, and harvest the lab result.

Only outputs produced by THIS execution are ever read: a submitted notebook's stored outputs are
cleared before it runs, and the course's pristine notebook has none, so a pasted "PASS" panel
earns nothing.
"""

from __future__ import annotations

import copy
import html
import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat import NotebookNode

from graders.checks import NOT_EVALUATED, STATUSES
from graders.notebook import MIME_ERROR, MIME_LAB

# The contract with lab notebooks (graders.notebook emits both): the lab result, or instead, when the
# target cannot be graded at all, {"message": one line, ...}.
RESULT_MIME, ERROR_MIME = MIME_LAB, MIME_ERROR
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
PARAMETER_NAMES = ("CONTEXT", "KUBECONFIG", "SNAPSHOT", "MANIFESTS")


class NotebookProblem(Exception):
    """The notebook cannot be graded; ``str()`` is the one-line reason."""


def read_notebook(text: str, where: str) -> NotebookNode:
    """Parse notebook JSON, turning every way it can be broken into one NotebookProblem line."""
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise NotebookProblem(f"{where} is not valid notebook JSON (line {err.lineno}, column {err.colno}: "
                              f"{err.msg})") from None
    except RecursionError:
        raise NotebookProblem(f"{where} is nested too deeply to be a notebook") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat warns about missing cell ids; irrelevant here
            nb = nbformat.reads(text, as_version=4)
    except Exception as err:  # nbformat raises a zoo of types for wrong shapes/versions
        raise NotebookProblem(f"{where} is not a readable Jupyter notebook ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''})") from None
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, Mapping) and "cell_type" in c for c in cells):
        raise NotebookProblem(f"{where} has no valid list of cells")
    for cell in cells:
        cell.setdefault("metadata", NotebookNode())
        if cell.get("cell_type") == "code":
            cell.setdefault("outputs", [])
            if not isinstance(cell.get("source"), str):
                raise NotebookProblem(f"{where} has a code cell whose source is not text")
    return nb


def parameters_index(nb: NotebookNode) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code" and PARAMETERS_TAG in (cell.get("metadata", {}).get("tags") or []):
            return i
    return None


def clear_outputs(nb: NotebookNode) -> NotebookNode:
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return out


def parameters_source(params: Mapping[str, Any]) -> str:
    """Python source assigning the parameters. Values are only None, str or list[str] and are written
    with ``repr`` so a path holding quotes or newlines cannot break out of its literal."""
    lines = ["# Parameters injected by `python -m graders grade` (batch grading)."]
    for name in PARAMETER_NAMES:
        value = params.get(name)
        if not (value is None or isinstance(value, str)
                or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            raise TypeError(f"parameter {name} must be None, str or list[str]")
        lines.append(f"{name} = {value!r}")
    return "\n".join(lines) + "\n"


def inject_parameters(nb: NotebookNode, params: Mapping[str, Any]) -> tuple[NotebookNode, int]:
    """A copy of ``nb`` with a parameters cell inserted right after the ``parameters``-tagged cell
    (at the top when there is none). Returns the notebook and the injected cell's index."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if INJECTED_TAG not in (c.get("metadata", {}).get("tags") or [])]
    idx = parameters_index(out)
    at = 0 if idx is None else idx + 1
    cell = nbformat.v4.new_code_cell(parameters_source(params), metadata={"tags": [INJECTED_TAG]})
    out.cells.insert(at, cell)
    return out, at


def harvest(nb: NotebookNode, lab_id: str, definition: Sequence[CheckDef] | None = None) -> dict[str, Any]:
    """The last lab result the execution displayed, validated. Raises NotebookProblem if none."""
    found: Any = None
    failed: Any = None
    for cell in nb.cells:
        for output in cell.get("outputs") or []:
            if output.get("output_type") in ("display_data", "execute_result"):
                data = output.get("data") or {}
                if RESULT_MIME in data:
                    found = data[RESULT_MIME]
                if ERROR_MIME in data:
                    failed = data[ERROR_MIME]
    if found is None and isinstance(failed, Mapping) and isinstance(failed.get("message"), str):
        raise NotebookProblem(f"could not grade: {' '.join(failed['message'].split())}")
    if found is None:
        said = last_message(nb)
        raise NotebookProblem("the notebook displayed no lab result" + (f"; it said: {said}" if said else
                              f" (its final cell must emit {RESULT_MIME}; was the last cell removed?)"))
    if isinstance(found, str):
        try:
            found = json.loads(found)
        except json.JSONDecodeError:
            raise NotebookProblem("the lab result output is not valid JSON") from None
    return validate_result(found, lab_id, definition)


def last_message(nb: NotebookNode, limit: int = 300) -> str:
    """The text of the last output, as one line: a notebook that catches its own errors (to show them
    nicely to a learner) says why it could not grade only there."""
    for cell in reversed(nb.cells):
        for output in reversed(cell.get("outputs") or []):
            kind = output.get("output_type")
            if kind == "error":
                text = f"{output.get('ename')}: {output.get('evalue')}"
            elif kind == "stream":
                text = str(output.get("text", ""))
            else:
                data = output.get("data") or {}
                if "text/html" in data:
                    text = html.unescape(re.sub(r"<[^>]+>", " ", str(data["text/html"])))
                else:
                    text = str(data.get("text/plain", ""))
                if text.startswith(("Button(", "VBox(", "HBox(")):  # a widget's repr says nothing
                    continue
            text = " ".join(text.split())
            if text:
                return text if len(text) <= limit else text[: limit - 3] + "..."
    return ""



@dataclass(frozen=True)
class CheckDef:
    """One check as the lab defines it (graders/labs): what a harvested result must agree with."""

    id: str
    title: str
    points: int | float
    needs: tuple[str, ...] = ()


def validate_result(payload: Any, lab_id: str, definition: Sequence[CheckDef] | None = None) -> dict[str, Any]:
    """A harvested lab result, checked and normalised; NotebookProblem when anything is off.

    Every result is untrusted text until checked: with the lab's ``definition`` (the course's labs),
    the checks must be exactly the lab's checks in its order, with its titles and points; a check is
    ``blocked`` exactly when a check it needs did not pass; statuses agree with ``passed``; and the
    totals are recomputed (``not-evaluated`` checks count in neither score nor max_score)."""
    def bad(why: str) -> NotebookProblem:
        return NotebookProblem(f"the lab result is malformed: {why}")

    if not isinstance(payload, Mapping):
        raise bad("not a JSON object")
    if payload.get("lab") != lab_id:
        raise bad(f"it is for lab {payload.get('lab')!r}, not {lab_id!r}")
    checks = payload.get("checks")
    if not isinstance(checks, list) or not checks:
        raise bad("no checks")
    clean = []
    for c in checks:
        if not (isinstance(c, Mapping) and isinstance(c.get("id"), str) and isinstance(c.get("passed"), bool)
                and isinstance(c.get("points"), int | float) and not isinstance(c.get("points"), bool)
                and math.isfinite(c["points"]) and c["points"] >= 0):
            raise bad("a check lacks id, passed or points (a number, 0 or more)")
        status = c.get("status", "passed" if c["passed"] else "failed")
        if status not in STATUSES or (status == "passed") != c["passed"]:
            raise bad(f"check {c['id'][:60]!r} has status {str(status)[:30]!r} with passed={c['passed']}")
        clean.append({"id": c["id"], "title": str(c.get("title") or c["id"]), "points": c["points"],
                      "passed": c["passed"], "status": status, "message": str(c.get("message") or ""),
                      "hint": None if c.get("hint") is None else str(c["hint"])})
    if definition is not None:
        _against_definition(clean, definition, bad)
    score = sum(c["points"] for c in clean if c["passed"])
    # Not-evaluated checks (no evidence on this target) are left out of max_score (graders.checks).
    max_score = sum(c["points"] for c in clean if c["status"] != NOT_EVALUATED)
    # The score is recomputed from the checks; a payload whose totals disagree is not trusted.
    if payload.get("score") != score or payload.get("max_score") != max_score:
        raise bad(f"score {str(payload.get('score'))[:20]}/{str(payload.get('max_score'))[:20]} does not add up "
                  f"to its checks ({score}/{max_score})")
    return {"lab": lab_id, "mode": str(payload.get("mode") or ""), "score": score, "max_score": max_score,
            "checks": clean}


def _against_definition(clean: list[dict[str, Any]], definition: Sequence[CheckDef], bad: Any) -> None:
    wanted = [d.id for d in definition]
    got = [c["id"] for c in clean]
    if got != wanted:
        unknown = [i for i in got if i not in wanted]
        missing = [i for i in wanted if i not in got]
        why = (f"check {unknown[0][:60]!r} is not a check of this lab" if unknown else
               f"check {missing[0]!r} is missing" if missing else "its checks are repeated or out of order")
        raise bad(f"{why} (the lab's checks: {', '.join(wanted)})")
    passed = {c["id"]: c["passed"] for c in clean}
    for c, d in zip(clean, definition, strict=True):
        if c["title"] != d.title or c["points"] != d.points:
            raise bad(f"check {d.id!r} claims title {c['title'][:60]!r} and {c['points']} points; the lab gives "
                      f"{d.title!r}, {d.points} points")
        blocked = any(not passed[n] for n in d.needs)
        if blocked != (c["status"] == "blocked"):
            raise bad(f"check {d.id!r} is {c['status']} although the checks it needs "
                      f"({', '.join(d.needs) or 'none'}) {'did not all pass' if blocked else 'passed'}")


def compare_results(claimed: Mapping[str, Any], reference: Mapping[str, Any]) -> str | None:
    """Why a learner notebook's (validated) result differs from the course's own grading of the same
    files, or None when it agrees check by check."""
    ref = {c["id"]: c for c in reference["checks"]}
    for c in claimed["checks"]:
        r = ref.get(c["id"])
        if r is None or (c["passed"], c["points"], c["status"]) != (r["passed"], r["points"], r["status"]):
            actual = "is not a check of the course's result" if r is None else f"is {r['status']}"
            return (f"the notebook's own result does not match the course's grading of the submitted files: it "
                    f"claims {claimed['score']}/{claimed['max_score']}, the files score "
                    f"{reference['score']}/{reference['max_score']} (check {c['id'][:60]!r}: claimed "
                    f"{c['status']}, {actual}); the course's result is not recorded")
    if len(claimed["checks"]) != len(ref) or (claimed["score"], claimed["max_score"]) != (
            reference["score"], reference["max_score"]):
        return (f"the notebook's own result does not match the course's grading of the submitted files: it claims "
                f"{claimed['score']}/{claimed['max_score']}, the files score {reference['score']}/"
                f"{reference['max_score']}")
    return None


def first_markdown_heading(nb: NotebookNode) -> str | None:
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            for line in str(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None
