"""What the instructor hands out and reads: feedback pages in a learner's words, the class summary,
and the note on canvas.csv's empty columns."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from batch_fixtures import FIXTURE_NOTEBOOK

from graders.batch.feedback import feedback_html, learner_reason
from graders.batch.gradebook import canvas_csv, canvas_notes, check_status
from graders.batch.inputs import RosterEntry
from graders.batch.summary import score_axis, status_counts, summary_html

REPO = Path(__file__).resolve().parents[1]


def _check(cid: str, passed: bool, message: str = "m", hint: str | None = None, **extra) -> dict:
    return {"id": cid, "title": cid.upper(), "points": 2, "passed": passed, "message": message, "hint": hint,
            **extra}


GRADED = {"learner": "bob", "name": "Bob", "lab": "lab01", "status": "graded", "score": 2, "max_score": 8,
          "mode": "manifests", "reason": "", "unsafe_id": False,
          "checks": [_check("a", True),
                     _check("b", False, "VirtualService `default/bookinfo` lists no gateway.",
                            "Look at `spec.gateways` of VirtualService default/bookinfo."),
                     _check("c", False, "skipped: needs “B” first."),
                     _check("d", False, "needs a live cluster", status="not-evaluated")]}


def grader_flags() -> set[str]:
    """Every option of `python -m graders grade`: words for the instructor, never for a learner."""
    from graders.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {o for a in sub.choices["grade"]._actions for o in a.option_strings if o.startswith("--")} - {"--help"}


def _error(learner: str, reason: str) -> dict:
    return {"learner": learner, "name": "", "lab": "lab01", "status": "error", "score": None, "max_score": None,
            "mode": "", "reason": reason, "unsafe_id": False, "checks": []}


# --- feedback pages ----------------------------------------------------------------------------------
def test_hints_and_messages_render_code_and_no_raw_backticks():
    page = feedback_html(GRADED, "Expose Bookinfo")
    assert "Hint: Look at <code>spec.gateways</code> of VirtualService default/bookinfo." in page
    assert "<code>default/bookinfo</code>" in page and "`" not in page


def test_failed_blocked_and_not_evaluated_are_told_apart():
    page = feedback_html(GRADED, "Expose Bookinfo")
    assert page.count("not yet</span>") == 1 and page.count("skipped</span>") == 1
    assert page.count("not evaluated</span>") == 1 and "waits on an earlier check" in page
    assert page.count("Hint:") == 1, "only a failed check has a hint to act on"
    assert [check_status(c) for c in GRADED["checks"]] == ["passed", "failed", "blocked", "not-evaluated"]


@pytest.mark.parametrize("missing", [
    "no snapshot.yaml and no YAML files in manifests/, work/ or labs/lab01/work/ in the submission",
    "no YAML files in manifests/, work/ or labs/lab01/work/ in the submission",  # --mode manifests
    "no snapshot.yaml in the submission",  # --mode snapshot
])
def test_nothing_to_grade_says_what_to_hand_in_without_grader_flags(missing):
    reason = (f"{missing}; a notebook's stored outputs are never "
              "trusted (use --execute-submitted-notebooks to run it)")
    page = feedback_html(_error("carol", reason), "Expose Bookinfo")
    assert "--execute-submitted-notebooks" in grader_flags()
    assert not [f for f in grader_flags() if f in page]
    assert "We found nothing we can grade in your submission." in page
    assert "<code>labs/lab01/work/</code>" in page and "<code>snapshot.yaml</code>" in page
    assert "A notebook on its own is not enough" in page


@pytest.mark.parametrize("reason", [
    "the learner id contains control, format or space characters; rename the folder (or fix the roster row) "
    "to a plain id such as the LMS login",
    "learner ids 'Frank', 'frank' differ only by case; their files would collide on a case-insensitive file "
    "system, so neither is graded: rename one folder (or roster row)",
])
def test_an_id_problem_is_the_instructors_to_fix_in_the_learners_words(reason):
    text, hand_in = learner_reason(reason)
    assert "Your instructor will rename it" in text and not hand_in
    assert "roster" not in text and "case-insensitive" not in text


def test_a_broken_notebook_is_called_broken():
    reason = "notebook lab01-expose-bookinfo.ipynb is not valid notebook JSON (line 1, column 11: Expecting value)"
    text, hand_in = learner_reason(reason)
    assert text.startswith("Your notebook is broken: it cannot be opened as a Jupyter notebook") and hand_in
    assert "line 1, column 11" in text


def test_instructor_words_are_dropped():
    assert learner_reason("the worker process died while grading; re-run with --retry-errors") == \
        ("The worker process died while grading.", False)
    text, _ = learner_reason("internal error while grading: KeyError: 'spec'")
    assert "KeyError" not in text and "not in your work" in text
    text, _ = learner_reason("timed out after 60 s while running cell 7 (`lab.check(\"vs-bound\")`)")
    assert text == "Timed out after 60 s while running cell 7 (`lab.check(\"vs-bound\")`)."


# --- summary.html ---------------------------------------------------------------------------------
def test_summary_lists_every_learner_with_a_link_date_and_versions():
    rows = [GRADED, _error("carol", "no snapshot.yaml or manifests/ folder in the submission"),
            {**_error("bad\x07id", "unsafe"), "unsafe_id": True}]
    page = summary_html(rows, "lab01", "Expose Bookinfo", [], generated=datetime(2026, 12, 2, 15, 4, tzinfo=UTC),
                        course="Istio 1.30.3 course, commit abc1234")
    assert "Generated 2026-12-02 15:04 UTC by graders 0.1.0; Istio 1.30.3 course, commit abc1234." in page
    assert "<a href='feedback/bob.html'>bob</a>" in page and "<a href='feedback/carol.html'>carol</a>" in page
    assert re.search(r"<a href='feedback/_unsafe-[0-9a-f]{16}\.html'>", page), "the stored page's own name"
    bob = re.search(r"<tr><td><a href='feedback/bob.html'>.*?</tr>", page).group(0)
    assert re.findall(r"<td class='n'>([^<]*)</td>", bob) == ["2 / 8", "1", "1", "1"]
    assert "<th>Failed</th><th>Blocked</th>" in page and "<th>Not evaluated</th>" in page


def test_summary_counts_blocked_apart_from_failed_per_check():
    counts = status_counts([GRADED, {**GRADED, "checks": [_check("b", True), _check("c", False)]}], ["b", "c"])
    assert counts == [{"passed": 1, "failed": 1, "blocked": 0, "not-evaluated": 0},
                      {"passed": 0, "failed": 1, "blocked": 1, "not-evaluated": 0}]


def test_course_version_names_istio_and_the_commit():
    from graders.batch.summary import course_version

    version = course_version()
    assert version.startswith("Istio 1.30.3 course")


def test_score_axis_ends_at_the_maximum_score():
    assert score_axis(3) == ((-0.5, 3.5), [0, 1, 2, 3])
    assert score_axis(15) == ((-0.5, 15.5), [0, 2, 4, 6, 8, 10, 12, 14, 15])
    (_, high), ticks = score_axis(100)
    assert high == 100.5 and ticks[-1] == 100 and len(ticks) <= 12


# --- canvas.csv's empty columns -------------------------------------------------------------------------
def test_canvas_without_roster_says_which_columns_are_empty_and_why():
    text = canvas_csv([GRADED], {}, "Expose Bookinfo", "lab01")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[2] == ["bob", "", "", "bob", "", "2"]
    (note,) = canvas_notes(text, roster_given=False)
    assert note.startswith("canvas.csv: ID, SIS User ID and Section are empty because no --roster was given")
    assert "SIS Login ID" in note


def test_canvas_with_a_partial_roster_names_the_unmatched_learners():
    roster = {"bob": RosterEntry("bob", name="Bob", canvas_id="17")}
    text = canvas_csv([GRADED, _error("carol", "x")], roster, "Expose Bookinfo", "lab01")
    (note,) = canvas_notes(text, roster_given=True)
    assert note.startswith("canvas.csv: 1 of 2 rows have no ID and no SIS User ID (carol)")
    full = {"bob": roster["bob"], "carol": RosterEntry("carol", sis_user_id="S2")}
    assert canvas_notes(canvas_csv([GRADED, _error("carol", "x")], full, "E", "lab01"), roster_given=True) == []


def test_grade_prints_the_canvas_note_and_writes_learner_words(tmp_path):
    subs = tmp_path / "subs"
    (subs / "carol").mkdir(parents=True)
    (subs / "carol" / "notes.txt").write_text("my notebook is somewhere else")
    out = tmp_path / "grades"
    proc = subprocess.run([sys.executable, "-m", "graders", "grade", "--lab", str(FIXTURE_NOTEBOOK), str(subs),
                           "--out", str(out), "--workers", "1"], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "canvas.csv: ID, SIS User ID and Section are empty because no --roster was given" in proc.stdout
    page = (out / "feedback" / "carol.html").read_text()
    assert "We found nothing we can grade in your submission." in page
    assert not [f for f in grader_flags() if f in page]
    summary = (out / "summary.html").read_text()
    assert "<a href='feedback/carol.html'>carol</a>" in summary


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Chromium not installed: `make system-deps`")
def test_a_feedback_page_fits_a_phone(tmp_path):
    """Learners open their feedback on a phone: at 390 px nothing may stick out sideways -- not the note under
    a skipped check, not a long command in a hint (found at 645 px wide before)."""
    from playwright.sync_api import sync_playwright

    long_hint = ("Compare spec.servers[].port.number with `python -m graders get svc istio-ingressgateway "
                 "-n istio-system labs/lab01/work-with-a-long-folder-name-that-does-not-break/`.")
    result = {**GRADED, "checks": [*GRADED["checks"], _check("e", False, "m", long_hint)]}
    page = tmp_path / "bob.html"
    page.write_text(feedback_html(result, "Expose Bookinfo"), encoding="utf-8")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        try:
            tab = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
            tab.goto(page.as_uri())
            assert tab.evaluate("document.documentElement.scrollWidth") <= 390
            assert tab.locator(".why").first.is_visible()
        finally:
            browser.close()
