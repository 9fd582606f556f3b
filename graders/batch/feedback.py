"""Per-learner feedback page: what passed, what did not, what waits on an earlier check, and the first
hint of each failure -- written for the learner, not for the instructor who ran the grader.

Built only from the public fields of a check result (title, points, passed, status, message, hint),
so nothing an instructor keeps back (analyzer details, other hints, other learners) can leak. Every
string is HTML-escaped, then `code` spans become <code> (hints are written in that notation); the
page is self-contained (inline CSS, no scripts, no external assets).

The reason a submission could not be graded is stored once, in the instructor's words (the gradebook's
``reason`` column, which may name grader options such as ``--retry-errors``); ``learner_reason``
says it in a learner's words: no grader flags, what to hand in when nothing gradeable was found, a
broken notebook called broken, and no internals of a grader crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any

from graders.batch.gradebook import check_status, fmt_points
from graders.notebook import rich_text

STYLE = """
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.4rem} .score{font-size:1.2rem;font-weight:600}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #ddd;padding:.5rem;text-align:left;
vertical-align:top} .mark{display:inline-block;min-width:5.5em;text-align:center;border-radius:3px;padding:0 .4em;
font-weight:700;font-size:.85em;color:#fff} .pass{background:#1a7f37} .fail{background:#b42318}
.skip{background:#7d4e00} .noteval{background:#0550ae}
.hint{color:#444;margin-top:.3rem} .mark{white-space:nowrap} td:first-child{width:7em}
.why{color:#57606a;font-size:.9em} td{overflow-wrap:anywhere}
.error{background:#fff4e5;border:1px solid #f0b35b;padding:.8rem} code{background:#f3f4f6;padding:0 .2em}
""".strip()

# status -> (css class, word shown, what it means for the learner)
MARKS = {
    "passed": ("pass", "passed", ""),
    "failed": ("fail", "not yet", ""),
    "blocked": ("skip", "skipped", "waits on an earlier check: fix that one first"),
    "not-evaluated": ("noteval", "not evaluated", "not evaluated here (see why); not counted in your score"),
}

HAND_IN = (
    "<p>What you can hand in (in your submission folder or zip):</p><ul>"
    "<li>the YAML files you wrote, in the lab's work folder (<code>labs/{lab}/work/</code>), or in a folder "
    "named <code>work/</code> or <code>manifests/</code>;</li>"
    "<li>or a snapshot of your cluster, saved as <code>snapshot.yaml</code>: "
    "<code>python -m graders snapshot --context kind-istio-lab -o snapshot.yaml</code>.</li></ul>"
    "<p>A notebook on its own is not enough: the results saved in it are not used. Grading runs the "
    "course's notebook again on your files.</p>")

_NOTHING = ("no snapshot.yaml", "no manifests/ folder", "no YAML files in", "no submission found",
            "no submission folder")
_BROKEN = ("is not valid notebook JSON", "is not a readable Jupyter notebook", "has no valid list of cells",
           "is nested too deeply to be a notebook", "has a code cell whose source is not text")
_FLAG_CLAUSE = re.compile(r"\s*\([^()]*--[a-z][a-z-]*[^()]*\)|;[^;]*--[a-z][a-z-]*[^;]*")


def learner_reason(reason: str) -> tuple[str, bool]:
    """(the reason in a learner's words, whether to show what to hand in)."""
    text = " ".join(reason.split())
    if text.startswith("internal error"):
        return ("Something went wrong on the grading side, not in your work. Your instructor has the details "
                "and will grade it again.", False)
    if text.startswith("the learner id") or "differ only by case" in text:  # the instructor's to fix
        return ("The name of your submission (its folder or zip) cannot be used to file your grade, so it was "
                "not graded yet. Your instructor will rename it and grade it; you need not do anything.", False)
    if any(text.startswith(n) for n in _NOTHING):
        return "We found nothing we can grade in your submission.", True
    if any(b in text for b in _BROKEN):
        detail = _FLAG_CLAUSE.sub("", text)
        return f"Your notebook is broken: it cannot be opened as a Jupyter notebook ({detail}).", True
    if text.startswith("no notebook (*.ipynb)") or "notebooks in the submission and none is named" in text:
        return _sentence(_FLAG_CLAUSE.sub("", text)), True
    return _sentence(_FLAG_CLAUSE.sub("", text) or "unknown reason"), False


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def feedback_html(result: Mapping[str, Any], lab_title: str) -> str:
    learner = escape(str(result["learner"]))
    title = escape(f"{lab_title} ({result['lab']})")
    parts = ["<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{title}: feedback for {learner}</title><style>{STYLE}</style></head><body>",
             f"<h1>{title}</h1><p>Feedback for <strong>{learner}</strong></p>"]
    if result["status"] != "graded":
        why, hand_in = learner_reason(str(result.get("reason") or ""))
        parts.append("<div class='error'><p><strong>Your submission could not be graded.</strong></p>"
                     f"<p>{rich_text(why)}</p>"
                     + (HAND_IN.format(lab=escape(str(result["lab"]))) if hand_in else "")
                     + "<p>Fix the problem and submit again, or ask your instructor.</p></div>")
    else:
        parts.append(f"<p class='score'>Score: {fmt_points(result['score'])} / {fmt_points(result['max_score'])}</p>")
        rows = []
        for c in result.get("checks") or []:
            css, word, meaning = MARKS[check_status(c)]
            mark = f"<span class='mark {css}'>{word}</span>"
            earned = c["points"] if c["passed"] else 0
            hint = ("" if check_status(c) != "failed" or not c.get("hint")
                    else f"<div class='hint'>Hint: {rich_text(str(c['hint']))}</div>")
            why = f"<div class='why'>{meaning}</div>" if meaning else ""
            rows.append(f"<tr><td>{mark}{why}</td><td><strong>{rich_text(str(c['title']))}</strong>"
                        f"<div>{rich_text(str(c.get('message') or ''))}</div>{hint}</td>"
                        f"<td>{fmt_points(earned)}/{fmt_points(c['points'])}</td></tr>")
        parts.append("<table><thead><tr><th>Result</th><th>Check</th><th>Points</th></tr></thead><tbody>"
                     + "".join(rows) + "</tbody></table>")
    parts.append("</body></html>\n")
    return "".join(parts)
