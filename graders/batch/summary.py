"""``summary.html``: the class at a glance -- when and with what it was graded, every learner with a
link to their feedback page, the score distribution, and per check how many passed, failed, or were
blocked (not run because an earlier check failed: one mistake, counted once as failed), and the rows
in error and why.

Plots are drawn with matplotlib's Agg backend and embedded as base64 SVG (fonts as paths), so the
page works offline, opened straight from disk, with no external assets. Axes end at what can be
reached: the score axis at the lab's maximum score, the pass-rate axis at 100 %. Every number in a
plot is also in a table (screen readers, copy-paste).
"""

from __future__ import annotations

import base64
import io
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from graders.batch.gradebook import STATUSES, check_columns, check_status, fmt_points

REPO = Path(__file__).resolve().parents[2]
COLOURS = {"passed": "#1a7f37", "failed": "#b42318", "blocked": "#c08a1e", "not-evaluated": "#0550ae"}
STYLE = ("body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem}"
         "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;"
         "text-align:left}td.n{text-align:right}img{max-width:100%}.meta{color:#57606a}"
         ".failed{color:#b42318}.blocked{color:#7d4e00}.error{color:#7d4e00;font-weight:600}")


def _svg(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def status_counts(graded: Sequence[Mapping[str, Any]], checks: list[str]) -> list[dict[str, int]]:
    """Per check, in the lab's order: how many graded learners' results are in each status."""
    out = []
    for cid in checks:
        counts = dict.fromkeys(STATUSES, 0)
        for r in graded:
            for c in r["checks"]:
                if c["id"] == cid:
                    counts[check_status(c)] += 1
        out.append(counts)
    return out


def pass_counts(graded: Sequence[Mapping[str, Any]], checks: list[str]) -> list[tuple[int, int]]:
    """(learners passing, learners with the check) per check, in the lab's order."""
    return [(n["passed"], sum(n.values())) for n in status_counts(graded, checks)]


def score_axis(max_score: float) -> tuple[tuple[float, float], list[int]]:
    """The histogram's x range and ticks: bars centred on whole scores, the axis ending at the maximum."""
    top = int(max_score)
    step = max(1, -(-top // 10))  # at most about ten ticks
    ticks = list(range(0, top + 1, step))
    if ticks[-1] != top:
        ticks.append(top)
    return (-0.5, top + 0.5), ticks


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
    xlim, ticks = score_axis(max_score)
    ax.set_xlim(*xlim)
    ax.set_xticks(ticks)
    ax.set_xlabel(f"score (out of {max_score:g})")
    ax.set_ylabel("learners")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Score distribution")
    hist = _svg(fig)

    counts = status_counts(graded, checks)
    fig = Figure(figsize=(6, 0.45 * len(checks) + 1.4))
    ax = fig.subplots()
    left = [0.0] * len(checks)
    for status in STATUSES:
        share = [100 * n[status] / (sum(n.values()) or 1) for n in counts]
        if any(share):
            ax.barh(list(range(len(checks))), share, left=left, color=COLOURS[status], label=status)
            left = [a + b for a, b in zip(left, share, strict=True)]
    ax.set_yticks(list(range(len(checks))), checks)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of graded learners")
    ax.set_title("Checks: passed, failed, blocked")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(checks) > 3 else -0.4), ncol=4, frameon=False)
    return hist, _svg(fig)


def course_version() -> str:
    """What the class was graded against: the pinned Istio version and the course checkout's commit."""
    from graders import versions

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"Istio {versions.ISTIO_VERSION} course" + (f", commit {commit}" if commit else "")


def _learner_rows(results: Sequence[Mapping[str, Any]]) -> list[str]:
    from graders.batch.inputs import result_stem

    rows = ["<table><tr><th>Learner</th><th>Name</th><th>Status</th><th>Score</th><th>Passed</th>"
            "<th>Failed</th><th>Blocked</th><th>Graded from</th></tr>"]
    for r in sorted(results, key=lambda r: str(r["learner"])):
        link = f"feedback/{quote(result_stem(str(r['learner'])))}.html"
        n = dict.fromkeys(STATUSES, 0)
        for c in r.get("checks") or []:
            n[check_status(c)] += 1
        graded = r["status"] == "graded"
        score = f"{fmt_points(r['score'])} / {fmt_points(r['max_score'])}" if graded else ""
        status = "graded" if graded else "<span class='error'>error</span>"
        rows.append(f"<tr><td><a href='{escape(link)}'>{escape(str(r['learner']))}</a></td>"
                    f"<td>{escape(str(r.get('name') or ''))}</td><td>{status}</td><td class='n'>{score}</td>"
                    + "".join(f"<td class='n'>{n[s] if graded else ''}</td>" for s in ("passed", "failed", "blocked"))
                    + f"<td>{escape(str(r.get('mode') or ''))}</td></tr>")
    rows.append("</table>")
    return rows


def summary_html(results: Sequence[Mapping[str, Any]], lab: str, title: str, pending: Sequence[str], *,
                 generated: datetime | None = None, course: str | None = None) -> str:
    from graders import __version__

    graded = [r for r in results if r["status"] == "graded"]
    errors = sorted((r for r in results if r["status"] != "graded"), key=lambda r: r["learner"])
    checks = check_columns(graded)
    head = escape(f"{title} ({lab})")
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{head}: class summary</title>"
           f"<style>{STYLE}</style></head><body>",
           f"<h1>{head}: class summary</h1>",
           f"<p class='meta'>Generated {when} by graders {escape(__version__)}; "
           f"{escape(course or course_version())}.</p>",
           f"<p>{len(graded)} graded, {len(errors)} in error"
           + (f", {len(pending)} not graded yet (run interrupted; re-run to finish)" if pending else "") + ".</p>"]
    if graded:
        scores = [r["score"] for r in graded]
        out.append(f"<p>Mean score {statistics.fmean(scores):.2f}, median {statistics.median(scores):g} "
                   f"of {max(r['max_score'] for r in graded):g}; "
                   f"{sum(r['score'] == r['max_score'] for r in graded)} with full marks.</p>")
    if results:
        out.append("<h2>Learners</h2><p>Each name links to the feedback page the learner gets. Failed: the "
                   "learner's own mistakes; blocked: checks not run because an earlier one failed.</p>")
        out += _learner_rows(results)
    if graded:
        hist, rates = _plots(graded, checks)
        out.append(f"<h2>Score distribution</h2><img alt='Histogram of learner scores' src='{hist}'>")
        out.append(f"<h2>Per check</h2><img alt='Share of learners who passed, failed or were blocked on each "
                   f"check' src='{rates}'>")
        counts = status_counts(graded, checks)
        shown = [s for s in STATUSES if s != "not-evaluated" or any(n[s] for n in counts)]
        out.append("<table><tr><th>Check</th>" + "".join(f"<th>{s.replace('-', ' ').capitalize()}</th>"
                                                         for s in shown) + "</tr>")
        for cid, n in zip(checks, counts, strict=True):
            out.append(f"<tr><td>{escape(cid)}</td>" + "".join(
                f"<td>{n[s]} of {sum(n.values())}</td>" if s == "passed" else f"<td class='n'>{n[s]}</td>"
                for s in shown) + "</tr>")
        out.append("</table>")
    if errors:
        out.append("<h2>Not graded (status error)</h2><table><tr><th>Learner</th><th>Reason</th></tr>")
        out += [f"<tr><td>{escape(str(r['learner']))}</td><td>{escape(str(r.get('reason') or ''))}</td></tr>"
                for r in errors]
        out.append("</table>")
    out.append("</body></html>\n")
    return "".join(out)
