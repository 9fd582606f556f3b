"""Helpers for the book's code cells.

The book runs each page's cells with the page's folder (chapters/) as working directory, but a
learner types commands from the repository root. ``run`` bridges the two so every example on a
page is the exact command a learner can paste, and what it shows is what that command reports.

How it is shown is made for a web page, not a terminal: the tools wrap their text at 100 columns
for a terminal, so ``run`` also asks the same command for its JSON (a stable contract, README "JSON
output") and lets the browser wrap the sentences. A trace shows the step that decides its outcome
and folds the others (every trace starts with the same few steps); the "simulated" banner is shown
once per page, and the exit code only when it is not 0. The plain text the command prints stays in
the output too (text/plain), for anything that does not render HTML.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Commands whose JSON output ``run`` lays out itself; anything else is shown as the text it prints.
STRUCTURED = ("analyze", "trace")


@contextlib.contextmanager
def at_root():
    """Run a block from the repository root (paths in the examples are relative to it)."""
    before = Path.cwd()
    os.chdir(ROOT)
    try:
        yield ROOT
    finally:
        os.chdir(before)


def invoke(argv: list[str]) -> tuple[int, str]:
    """Run ``python -m graders <argv>`` in-process from the repository root: exit code and everything printed."""
    from graders.cli import main

    out, err = io.StringIO(), io.StringIO()
    with at_root(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse --help / usage errors
            code = exc.code if isinstance(exc.code, int) else 0
    return code, out.getvalue() + err.getvalue()


@dataclass
class Page:
    """What the page has shown so far: the mode banner appears once, and again only if the mode changes."""

    banner: str | None = None


@dataclass
class Shown:
    command: str
    code: int
    text: str
    html: str
    data: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


_PAGE = Page()


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _first_line(text: str, prefix: str) -> str | None:
    return next((line for line in text.splitlines() if line.startswith(prefix)), None)


def _banner(text: str, page: Page) -> str:
    """The "Mode: ..." line, unless the page already showed one for the same mode ("simulated",
    "snapshot", "live"): it then only differs by the files laid over the cluster, which the command
    line already shows."""
    banner = _first_line(text, "Mode: ")
    mode = banner.split(" — ")[0] if banner else None
    if banner is None or mode == page.banner:
        return ""
    page.banner = mode
    return f'<p class="course-banner">{_e(banner)}</p>'


def _step_items(steps: list[dict[str, Any]], start: int) -> str:
    items = []
    for step in steps:
        objects = step.get("objects") or []
        mark = " (uncertain)" if step.get("uncertain") else ""
        items.append(f'<li><span class="course-step-name">[{_e(step["step"])}]</span> {_e(step["result"])}{mark}'
                     + (f'<br><span class="course-objects">decided by: {_e(", ".join(objects))}</span>'
                        if objects else "") + "</li>")
    return f'<ol class="course-steps" start="{start}">' + "".join(items) + "</ol>"


def _folded(steps: list[dict[str, Any]], start: int) -> str:
    if not steps:
        return ""
    span = f"step {start}" if len(steps) == 1 else f"steps {start}–{start + len(steps) - 1}"
    names = ", ".join(s["step"] for s in steps)
    return f"<details><summary>Show {span} ({_e(names)})</summary>{_step_items(steps, start)}</details>"


def decisive_step(steps: list[dict[str, Any]], focus: str | None, outcome: str) -> int:
    """Index of the step a reader needs: the one named ``focus``; else, for a request that reached the
    application, the route that matched it (which route wins is what the book's examples are about);
    else the last step, where the request stopped."""
    wanted = focus if focus is not None else ("route" if outcome == "ok" else None)
    named = [i for i, s in enumerate(steps) if s["step"] == wanted]
    if focus is not None and not named:
        raise AssertionError(f"the page's claim no longer holds: the trace has no {focus!r} step")
    return named[-1] if named else len(steps) - 1


def trace_html(text: str, data: dict[str, Any], focus: str | None) -> str:
    steps = data["steps"]
    parts = []
    request = next((line for line in text.splitlines() if " -> Service " in line), None)
    if request:
        parts.append(f'<p class="course-request">{_e(request)}</p>')
    if steps:
        k = decisive_step(steps, focus, data["outcome"])
        parts += [_folded(steps[:k], 1), _step_items(steps[k:k + 1], k + 1), _folded(steps[k + 1:], k + 2)]
    outcome = _first_line(text, "Outcome: ")
    if outcome:
        good = "ok" if data["outcome"] == "ok" else "bad"
        parts.append(f'<p class="course-outcome {good}">{_e(outcome)}</p>')
    destination = _first_line(text, "Destination: ")
    if destination:
        parts.append(f"<p>{_e(destination)}</p>")
    return "".join(parts)


def findings_html(text: str, data: dict[str, Any]) -> str:
    parts = []
    for f in data["findings"]:
        like = ", ".join(c for c in (f.get("istio_code"), f.get("kiali_code")) if c)
        origin = f"  [{f['origin']}]" if f.get("origin") else ""
        parts.append(
            f'<div class="course-finding {_e(f["severity"])}">'
            f'<p><strong>{_e(f["severity"].upper())}</strong> <code>{_e(f["code"])}</code>'
            + (f" (like {_e(like)})" if like else "") + "</p>"
            f'<p>{_e(f["message"])}</p><p><em>Fix:</em> {_e(f["hint"])}</p>'
            f'<p class="course-objects">Objects: {_e(", ".join(f["resources"]) + origin)}</p></div>')
    if not data["findings"]:
        parts.append("<p>No problems found.</p>")
    else:
        summary = text.rstrip("\n").splitlines()[-1] if text.strip() else ""
        parts.append(f"<p>{_e(summary)}</p>")
    return "".join(parts)


def render(command: str, *, expect: int | None = None, outcome: str | None = None,
           codes: tuple[str, ...] = (), focus: str | None = None, page: Page | None = None) -> Shown:
    """Run the command (and, for analyze/trace, the same command with ``-o json``) and lay it out.

    ``expect`` (exit code), ``outcome`` (a trace outcome) and ``codes`` (finding codes that must be
    reported) record what the prose around the example claims; ``problems`` lists every claim the
    tool no longer agrees with. ``focus`` names the trace step to show unfolded.
    """
    page = page if page is not None else _PAGE
    argv = shlex.split(command)
    if argv[:3] != ["python", "-m", "graders"]:
        raise ValueError(f"not a graders command: {command}")
    code, text = invoke(argv[3:])
    data = None
    sub = argv[3] if len(argv) > 3 else ""
    if sub in STRUCTURED and "-o" not in argv and "--output" not in argv:
        json_code, json_text = invoke([*argv[3:], "-o", "json"])
        data = json.loads(json_text)
        if json_code != code:
            raise AssertionError(f"{command}: exit code {code} as text but {json_code} as JSON")
    body = _banner(text, page)
    if data is not None and sub == "trace":
        body += trace_html(text, data, focus)
    elif data is not None:
        body += findings_html(text, data)
    else:
        body += f"<pre>{_e(text.rstrip())}</pre>"
    if code != 0:
        body += f'<p class="course-exit">exit code {code}</p>'
    shown = Shown(command, code, text,
                  f'<div class="course-run"><pre class="course-cmd">$ {_e(command)}</pre>{body}</div>', data)
    if expect is not None and code != expect:
        shown.problems.append(f"exit code {code}, expected {expect}")
    if outcome is not None and (data or {}).get("outcome") != outcome:
        shown.problems.append(f"trace outcome is not {outcome!r}")
    reported = {f["code"] for f in (data or {}).get("findings", [])} if data else set()
    shown.problems += [f"finding {c} not reported" for c in codes
                       if (c not in reported if data else c not in text)]
    return shown


def run(command: str, *, expect: int | None = None, outcome: str | None = None,
        codes: tuple[str, ...] = (), focus: str | None = None) -> None:
    """Show a ``python -m graders ...`` command and its result on the page; fail the page's build
    when the tool stops agreeing with what the prose around the example claims, so the book cannot
    silently drift from the tools."""
    from IPython.display import display

    shown = render(command, expect=expect, outcome=outcome, codes=codes, focus=focus)
    display({"text/html": shown.html, "text/plain": f"$ {command}\n{shown.text.rstrip()}"}, raw=True)
    if shown.problems:
        raise AssertionError("the page's claim no longer holds: " + "; ".join(shown.problems))
