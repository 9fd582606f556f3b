"""Gradebooks derived from the stored per-learner results (pure: results in, text out).

Rows are sorted by learner id and hold no timestamps or durations, so the same results always
give byte-identical gradebooks -- an interrupted run that is resumed ends with exactly the
gradebook an uninterrupted run writes.

Canvas import (``canvas.csv``): the columns Canvas's own gradebook export starts with -- Student,
ID, SIS User ID, SIS Login ID, Section -- then one assignment column named
``<assignment name> (<assignment id>)``. Canvas matches learners by ID / SIS User ID / SIS Login ID,
so those come from the roster (columns canvas_id, sis_user_id, sis_login_id, section); without a
roster value the learner id is used as SIS Login ID (``canvas_notes`` says so in the run's output). A
"Points Possible" row follows the header,
as in Canvas's export. Error rows get an EMPTY score: Canvas leaves a blank cell unchanged, while 0
would overwrite a grade the instructor may have entered by hand.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection advice)."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def fmt_points(value: Any) -> str:
    """3 -> "3", 2.5 -> "2.5", None -> "" (points are ints in practice; never print "3.0")."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


STATUSES = ("passed", "failed", "blocked", "not-evaluated")


def check_status(c: Mapping[str, Any]) -> str:
    """A harvested check's status: its own when it carries one, else derived as the check command does
    (a check not run because an earlier one failed says "skipped: needs ...")."""
    status = c.get("status")
    if status in STATUSES:
        return str(status)
    if c.get("passed"):
        return "passed"
    return "blocked" if str(c.get("message") or "").startswith("skipped:") else "failed"


def check_columns(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Check ids in the lab's order (first appearance across results)."""
    seen: dict[str, None] = {}
    for r in results:
        for c in r.get("checks") or []:
            seen.setdefault(c["id"], None)
    return list(seen)


def gradebook_csv(results: Sequence[Mapping[str, Any]], lab: str) -> str:
    checks = check_columns(results)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["learner", "lab", "status", "score", "max_score", *checks, "reason"])
    for r in sorted(results, key=lambda r: r["learner"]):
        earned = {c["id"]: (c["points"] if c["passed"] else 0) for c in r.get("checks") or []}
        w.writerow([cell(r["learner"]), lab, r["status"], fmt_points(r.get("score")), fmt_points(r.get("max_score")),
                    *(fmt_points(earned.get(cid)) for cid in checks), cell(r.get("reason") or "")])
    return buf.getvalue()


def gradebook_json(results: Sequence[Mapping[str, Any]], lab: str, title: str, pending: Sequence[str]) -> str:
    keep = ("learner", "name", "status", "score", "max_score", "mode", "reason", "checks")
    rows = [{k: r.get(k) for k in keep} for r in sorted(results, key=lambda r: r["learner"])]
    doc = {"lab": lab, "title": title, "complete": not pending, "pending": sorted(pending),
           "counts": {"graded": sum(r["status"] == "graded" for r in rows),
                      "error": sum(r["status"] == "error" for r in rows), "pending": len(pending)},
           "checks": check_columns(results), "learners": rows}
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"


def canvas_column(title: str, assignment_id: str) -> str:
    return f"{title} ({assignment_id})"


def canvas_csv(results: Sequence[Mapping[str, Any]], roster: Mapping[str, Any], title: str,
               assignment_id: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", canvas_column(title, assignment_id)])
    max_scores = {r.get("max_score") for r in results if r["status"] == "graded"}
    points = fmt_points(max(max_scores)) if max_scores else ""
    w.writerow(["    Points Possible", "", "", "", "", points])
    for r in sorted(results, key=lambda r: r["learner"]):
        if r.get("unsafe_id"):
            continue  # an id that is not even a safe file name cannot be matched to a Canvas user
        entry = roster.get(r["learner"])
        name = (entry.name if entry else "") or r["learner"]
        score = fmt_points(r.get("score")) if r["status"] == "graded" else ""
        w.writerow([cell(name), cell(entry.canvas_id if entry else ""), cell(entry.sis_user_id if entry else ""),
                    cell((entry.sis_login_id if entry else "") or r["learner"]), cell(entry.section if entry else ""),
                    score])
    return buf.getvalue()


def canvas_notes(canvas: str, roster_given: bool) -> list[str]:
    """Lines for the run's output saying which canvas.csv columns are empty and why (a CSV cannot carry a
    comment Canvas would ignore). Read from the CSV itself, so they describe exactly the file written."""
    rows = list(csv.reader(io.StringIO(canvas)))[2:]
    if not rows:
        return []
    if not roster_given:
        return ["canvas.csv: ID, SIS User ID and Section are empty because no --roster was given; Canvas matches "
                "each row by SIS Login ID, which holds the learner id (the submission's folder or zip name). Check "
                "that those are Canvas login ids, or pass --roster with canvas_id, sis_user_id, sis_login_id and "
                "section columns."]
    unmatched = sorted(r[3] for r in rows if not r[1] and not r[2])
    if not unmatched:
        return []
    shown = ", ".join(unmatched[:5]) + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else "")
    return [f"canvas.csv: {len(unmatched)} of {len(rows)} rows have no ID and no SIS User ID ({shown}): the roster "
            "has no canvas_id or sis_user_id for them; Canvas matches them by SIS Login ID alone."]
