"""``summary.html``: the class at a glance -- score distribution, pass rate per check, the rows in
error and why. Plots are drawn with matplotlib's Agg backend and embedded as base64 SVG (fonts as
paths), so the page works offline, opened straight from disk, with no external assets."""

from __future__ import annotations

import base64
import io
import statistics
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from graders.batch.gradebook import check_columns


def _svg(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def pass_counts(graded: Sequence[Mapping[str, Any]], checks: list[str]) -> list[tuple[int, int]]:
    """(learners passing, learners with the check) per check, in the lab's order."""
    out = []
    for cid in checks:
        seen = [c["passed"] for r in graded for c in r["checks"] if c["id"] == cid]
        out.append((sum(seen), len(seen)))
    return out


def _plots(graded: Sequence[Mapping[str, Any]], checks: list[str]) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    matplotlib.rcParams["svg.fonttype"] = "path"
    max_score = max(r["max_score"] for r in graded)
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    bins = [x - 0.5 for x in range(int(max_score) + 2)]
    ax.hist([r["score"] for r in graded], bins=bins, color="#3a6ea5", edgecolor="white")
    ax.set_xlabel(f"score (out of {max_score:g})")
    ax.set_ylabel("learners")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Score distribution")
    hist = _svg(fig)

    rates = [100 * ok / n if n else 0 for ok, n in pass_counts(graded, checks)]
    fig = Figure(figsize=(6, 0.45 * len(checks) + 1))
    ax = fig.subplots()
    ax.barh(list(range(len(checks))), rates, color="#4c9a5a")
    ax.set_yticks(list(range(len(checks))), checks)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of graded learners passing")
    ax.set_title("Pass rate per check")
    return hist, _svg(fig)


def summary_html(results: Sequence[Mapping[str, Any]], lab: str, title: str, pending: Sequence[str]) -> str:
    graded = [r for r in results if r["status"] == "graded"]
    errors = sorted((r for r in results if r["status"] != "graded"), key=lambda r: r["learner"])
    checks = check_columns(graded)
    head = escape(f"{title} ({lab})")
    out = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{head}: class summary</title>"
           "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
           "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}"
           "img{max-width:100%}</style></head><body>",
           f"<h1>{head}: class summary</h1>",
           f"<p>{len(graded)} graded, {len(errors)} in error"
           + (f", {len(pending)} not graded yet (run interrupted; re-run to finish)" if pending else "") + ".</p>"]
    if graded:
        scores = [r["score"] for r in graded]
        out.append(f"<p>Mean score {statistics.fmean(scores):.2f}, median {statistics.median(scores):g} "
                   f"of {max(r['max_score'] for r in graded):g}; "
                   f"{sum(r['score'] == r['max_score'] for r in graded)} with full marks.</p>")
        hist, rates = _plots(graded, checks)
        out.append(f"<h2>Score distribution</h2><img alt='Histogram of learner scores' src='{hist}'>")
        out.append(f"<h2>Pass rate per check</h2><img alt='Share of learners passing each check' src='{rates}'>")
        # The same numbers as text: readable without the image (screen readers, copy-paste).
        out.append("<table><tr><th>Check</th><th>Passed</th></tr>")
        for cid, (ok, n) in zip(checks, pass_counts(graded, checks), strict=True):
            out.append(f"<tr><td>{escape(cid)}</td><td>{ok} of {n}</td></tr>")
        out.append("</table>")
    if errors:
        out.append("<h2>Not graded (status error)</h2><table><tr><th>Learner</th><th>Reason</th></tr>")
        out += [f"<tr><td>{escape(str(r['learner']))}</td><td>{escape(str(r.get('reason') or ''))}</td></tr>"
                for r in errors]
        out.append("</table>")
    out.append("</body></html>\n")
    return "".join(out)
