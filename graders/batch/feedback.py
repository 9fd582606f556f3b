"""Per-learner feedback page: what passed, what failed and the first hint of each failure.

Built only from the public fields of a check result (title, points, passed, message, hint), so
nothing an instructor keeps back (analyzer details, other hints, other learners) can leak. Every
string is HTML-escaped; the page is self-contained (inline CSS, no scripts, no external assets).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from graders.batch.gradebook import fmt_points

STYLE = """
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.4rem} .score{font-size:1.2rem;font-weight:600}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #ddd;padding:.5rem;text-align:left;
vertical-align:top} .pass{color:#0a6b2c;font-weight:700} .fail{color:#a31515;font-weight:700}
.hint{color:#444;margin-top:.3rem} td:first-child{white-space:nowrap} .skip{color:#57606a;font-weight:700}
.error{background:#fff4e5;border:1px solid #f0b35b;padding:.8rem}
""".strip()


def feedback_html(result: Mapping[str, Any], lab_title: str) -> str:
    learner = escape(str(result["learner"]))
    title = escape(f"{lab_title} ({result['lab']})")
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}: feedback for {learner}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>{title}</h1><p>Feedback for <strong>{learner}</strong></p>"]
    if result["status"] != "graded":
        parts.append("<div class='error'><p><strong>Your submission could not be graded.</strong></p>"
                     f"<p>{escape(str(result.get('reason') or 'unknown reason'))}</p>"
                     "<p>Fix the problem and submit again, or ask your instructor.</p></div>")
    else:
        parts.append(f"<p class='score'>Score: {fmt_points(result['score'])} / {fmt_points(result['max_score'])}</p>")
        rows = []
        for c in result.get("checks") or []:
            if c["passed"]:
                mark = "<span class='pass'>&#10003; passed</span>"
            elif str(c.get("message") or "").startswith("skipped:"):  # waits on an earlier check
                mark = "<span class='skip'>&ndash; skipped</span>"
            else:
                mark = "<span class='fail'>&#10007; not yet</span>"
            earned = c["points"] if c["passed"] else 0
            hint = ("" if c["passed"] or not c.get("hint")
                    else f"<div class='hint'>Hint: {escape(str(c['hint']))}</div>")
            rows.append(f"<tr><td>{mark}</td><td><strong>{escape(str(c['title']))}</strong>"
                        f"<div>{escape(str(c.get('message') or ''))}</div>{hint}</td>"
                        f"<td>{fmt_points(earned)}/{fmt_points(c['points'])}</td></tr>")
        parts.append("<table><thead><tr><th>Result</th><th>Check</th><th>Points</th></tr></thead><tbody>"
                     + "".join(rows) + "</tbody></table>")
    parts.append("</body></html>\n")
    return "".join(parts)
