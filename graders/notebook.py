"""Lab checks inside a Jupyter notebook: a pass/fail panel a learner reads, and output a machine reads.

Every check cell emits one display_data (the *panel*) whose bundle holds, side by side:

- ``text/html``: the panel (a status badge, the one-sentence result, the first hint and a folded second
  one, when it was graded);
- ``text/plain``: the same result as text, so a plain-text viewer (or nbconvert to text) has it too;
- ``application/vnd.istio-gateway-course.check+json``: the check's JSON, exactly as in
  ``python -m graders check LAB -o json`` (one entry of "checks").

The whole-lab cell emits ``application/vnd.istio-gateway-course.lab-result+json`` whose payload is
that command's whole JSON. Batch grading runs the pristine notebook itself and reads that output; it
never trusts the outputs stored in a submitted notebook. When the target cannot be graded at all (a
snapshot that is not YAML, an unreachable cluster), the panel says why and
``application/vnd.istio-gateway-course.lab-error+json`` carries the same line with its exit code, so
batch grading reports it without scraping the panel's text.

Widgets (the "Check again" button, a quiz's answer buttons) are separate outputs *beside* the panel,
never inside its bundle: a notebook reopened without a kernel has no widget models, so JupyterLab
shows "model not found" for a widget output, and a result or question living only there would be
lost. The button updates the panel through its display handle.

Stale results: every panel says when it was graded, and a session re-grades as a whole, so each
fresh grading (a check cell after an edit, "Check again", the final report) refreshes every panel
of the session through its display id: no earlier panel stays red while the report says all passed.

Status markers are text badges, not emoji (a browser without an emoji font shows empty boxes).

The target comes from the notebook's ``parameters`` cell (CONTEXT, KUBECONFIG, SNAPSHOT,
MANIFESTS). All None: the learner's ``labs/labNN/work/`` on the simulated lab cluster, found from
the repository root, so the notebook can run from any working directory.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from graders.checks import CheckResult, LabResult
from graders.commands.check import verdict
from graders.errors import GraderError
from graders.sources.simulated import REPO_ROOT

MIME_CHECK = "application/vnd.istio-gateway-course.check+json"
MIME_LAB = "application/vnd.istio-gateway-course.lab-result+json"
MIME_ERROR = "application/vnd.istio-gateway-course.lab-error+json"

# status -> (badge text, foreground, background). Distinct words and colours; unknown statuses look failed.
STATUS_STYLE = {
    "passed": ("PASSED", "#1a7f37", "#e6f4ea"),
    "failed": ("FAILED", "#b42318", "#fdecea"),
    "blocked": ("BLOCKED", "#7d4e00", "#fff4d6"),
    "not-evaluated": ("NOT EVALUATED", "#0550ae", "#e7f0fb"),
}
_MUTED = "#57606a"


def rich_text(text: str) -> str:
    """Escape for HTML, rendering `code` spans as <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _status(chk: CheckResult) -> str:
    status = getattr(chk, "status", None) or ("passed" if chk.passed else "failed")
    return status if status in STATUS_STYLE else "failed"


def badge(status: str) -> str:
    """A status marker readable without colour or emoji fonts: the status in words, in a coloured box."""
    text, fg, _ = STATUS_STYLE.get(status, STATUS_STYLE["failed"])
    return (f'<span class="igc-badge igc-badge-{status}" style="display:inline-block;min-width:6.5em;'
            f'text-align:center;font:bold 0.75em/1.6 sans-serif;letter-spacing:0.04em;color:#fff;background:{fg};'
            f'border-radius:3px;padding:0 0.5em;margin-right:0.5em;vertical-align:0.1em">{text}</span>')


def _points(chk: CheckResult, status: str) -> str:
    if status == "not-evaluated":
        return f"{chk.points} pt, not counted here"
    return f"{chk.points if chk.passed else 0}/{chk.points} pt"


def check_html(chk: CheckResult) -> str:
    status = _status(chk)
    _, fg, bg = STATUS_STYLE[status]
    out = [f'<div class="igc-check igc-{status}" style="border-left:4px solid {fg};background:{bg};'
           f'padding:0.5em 0.8em;margin:0.4em 0;border-radius:4px">',
           f'<div>{badge(status)}<strong>{rich_text(chk.title)}</strong> <span style="color:{_MUTED}">'
           f'({rich_text(chk.id)}, {_points(chk, status)})</span></div>',
           f'<div style="color:{fg};margin-top:0.2em">{rich_text(chk.message)}</div>']
    if status == "failed" and chk.hints:
        out.append(f'<div style="margin-top:0.3em"><strong>Hint:</strong> {rich_text(chk.hints[0])}</div>')
        for more in chk.hints[1:]:
            out.append(f'<details style="margin-top:0.2em"><summary>Still stuck? Another hint</summary>'
                       f'{rich_text(more)}</details>')
    out.append("</div>")
    return "".join(out)


def _banner(result: LabResult) -> str:
    return " ".join(result.notes) or f"Target: {result.description}."


def tally(result: LabResult) -> str:
    """"5 passed, 1 failed, 2 blocked": how many checks are in each status, in a fixed order."""
    counts = {s: sum(_status(c) == s for c in result.checks) for s in STATUS_STYLE}
    return ", ".join(f"{n} {s.replace('-', ' ')}" for s, n in counts.items() if n)


def lab_html(result: LabResult, when: str = "") -> str:
    ok = result.all_passed
    _, fg, _ = STATUS_STYLE["passed" if ok else "failed"]
    head = (f'<div class="igc-lab"><div style="font-size:1.1em"><strong>{rich_text(result.lab)}: '
            f'{rich_text(result.title)}'
            f'</strong> — <span style="color:{fg}"><strong>score {result.score}/{result.max_score}</strong>'
            f'{f" ({verdict(result)})" if ok else ""}</span> '
            f'<span style="color:{_MUTED}">({tally(result)})</span></div>'
            f'<div style="color:{_MUTED};font-size:0.9em">{rich_text(_banner(result))}</div>')
    tail = (f'<div style="color:{_MUTED}">Stuck? The background is in '
            f'<code>{rich_text(result.chapter)}.md</code>.</div>'
            if result.chapter and not ok else "")
    return head + "".join(check_html(c) for c in result.checks) + tail + _stamp_html(when) + "</div>"


MODE_NOTES = {"simulated": "simulated lab cluster: requests are traced, not sent",
              "manifests": "your files only: requests are traced, not sent",
              "live": "live cluster", "snapshot": "snapshot file"}


def _stamp_html(when: str) -> str:
    return (f'<div class="igc-when" style="color:{_MUTED};font-size:0.8em">graded at {rich_text(when)}</div>'
            if when else "")


def check_bundle(chk: CheckResult, result: LabResult, when: str = "") -> dict[str, Any]:
    """One check's panel; ``when`` (the time it was graded) tells a current panel from a stale one."""
    from graders.commands.check import check_lines

    mode = MODE_NOTES.get(result.mode, result.mode)
    stamp = f"; graded at {when}" if when else ""
    text = "\n".join([*check_lines(chk), f"   ({mode}{stamp})"])
    note = (f'<div class="igc-when" style="color:{_MUTED};font-size:0.8em;margin-top:-0.3em">{rich_text(mode)}'
            f'{rich_text(stamp)}</div>')
    return {"text/plain": text, "text/html": check_html(chk) + note, MIME_CHECK: chk.to_json()}


def lab_bundle(result: LabResult, when: str = "") -> dict[str, Any]:
    from graders.commands.check import render_text

    text = render_text(result) + (f"\n(graded at {when})" if when else "")
    return {"text/plain": text, "text/html": lab_html(result, when), MIME_LAB: result.to_json()}


def error_bundle(err: GraderError, lab_id: str, when: str = "") -> dict[str, Any]:
    text = f"Could not grade: {err}"
    _, fg, bg = STATUS_STYLE["failed"]
    return {"text/plain": text, MIME_ERROR: {"lab": lab_id, "message": str(err), "exit_code": err.exit_code},
            "text/html": f'<div class="igc-error" style="border-left:4px solid {fg};background:{bg};'
                         f'padding:0.5em 0.8em">{badge("failed")}<strong>Could not grade.</strong> '
                         f'{rich_text(str(err))}{_stamp_html(when)}</div>'}


BATCH_ENV = "GRADERS_BATCH_OUT"  # set by `python -m graders grade` in every kernel it starts


def _interactive() -> bool:
    """Widgets only where someone can click them: a live kernel that batch grading did not start
    (in a batch run they would only cost hundreds of kernel messages per learner)."""
    return _live_kernel() and not os.environ.get(BATCH_ENV)


def _live_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S on %Y-%m-%d")


def _display(bundle: dict[str, Any], *, again: Callable[[], None] | None = None) -> Any:
    """Show ``bundle`` as its own output and return its display handle; with a live kernel, a
    separate "Check again" button below it calls ``again`` (which updates panels by handle)."""
    from IPython.display import display

    handle = display(bundle, raw=True, display_id=True)
    if again is None or not _interactive():
        return handle
    try:
        import ipywidgets
    except ImportError:
        return handle
    button = ipywidgets.Button(description="Check again", icon="refresh", tooltip="Re-run the checks now")
    button.on_click(lambda _button: again())
    display(button)
    return handle


def _resolve(path: str) -> str:
    """A MANIFESTS entry: as given when it exists (relative to the notebook's folder), else from the repo root."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return str(p)
    return str(REPO_ROOT / p)


MAX_PANELS = 500  # display handles a session remembers (cells re-run many times leave old ones behind)


class LabSession:
    """The notebook's handle on one lab: ``lab.check("id")`` per step, ``lab.report()`` at the end."""

    def __init__(self, lab: str, *, CONTEXT: str | None = None, KUBECONFIG: str | None = None,
                 SNAPSHOT: str | None = None, MANIFESTS: Sequence[str] | str | None = None):
        from graders.labs import get

        self.lab = get(lab)
        self.context, self.kubeconfig = CONTEXT, KUBECONFIG
        self.snapshot = _resolve(SNAPSHOT) if SNAPSHOT else None
        manifests = [MANIFESTS] if isinstance(MANIFESTS, str) else list(MANIFESTS or [])
        self.paths = [_resolve(m) for m in manifests] or None
        self._cached: LabResult | None = None
        self._cached_key: tuple | None = None
        self._error: GraderError | None = None
        self._graded_at = ""
        self._panels: list[tuple[str | None, Any]] = []  # (check id, or None for the report; display handle)

    def describe(self) -> str:
        if self.context or self.kubeconfig:
            return f"the live cluster (context {self.context or 'current'})"
        if self.snapshot:
            return f"the snapshot {self.snapshot}"
        if self.paths:
            return f"{', '.join(self.paths)} on the simulated lab cluster"
        return f"your working folder labs/{self.lab.id}/work/ on the simulated lab cluster"

    def __repr__(self) -> str:
        return f"{self.lab.id}: {self.lab.title}\nGrading {self.describe()}."

    def result(self) -> LabResult:
        """Grade now (no display): the same call the check command makes.

        Off a live cluster the result is reused while no input file changed, so a notebook's many
        check cells grade once; a live cluster is asked every time (it changes under us)."""
        self._grade()
        if self._error is not None:
            raise self._error
        assert self._cached is not None
        return self._cached

    def _grade(self, *, force: bool = False) -> bool:
        """Grade unless the cached result is still current; True when a grading happened."""
        from graders.labs import run

        key = self._fingerprint()
        if not force and key is not None and key == self._cached_key and self._error is None:
            return False
        try:
            self._cached = run(self.lab, paths=self.paths, snapshot=self.snapshot, context=self.context,
                               kubeconfig=self.kubeconfig)
            self._error, self._cached_key = None, key
        except GraderError as err:
            self._cached, self._error, self._cached_key = None, err, None
        self._graded_at = _now()
        return True

    def _fingerprint(self) -> tuple | None:
        if self.context or self.kubeconfig:
            return None
        from graders.labs import lab_dir

        roots = [Path(p) for p in self.paths or [lab_dir(self.lab) / "work"]] + [lab_dir(self.lab) / "start"]
        roots += [Path(self.snapshot)] if self.snapshot else []
        files = [f for r in roots for f in ([r] if r.is_file() else sorted(r.rglob("*")) if r.is_dir() else [])
                 if f.is_file()]
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)

    def _bundle(self, check_id: str | None) -> dict[str, Any]:
        """The panel of ``check_id`` (None: the whole lab) from the last grading."""
        if self._error is not None or self._cached is None:
            err = self._error or GraderError("not graded yet")
            return error_bundle(err, self.lab.id, self._graded_at)
        if check_id is None:
            return lab_bundle(self._cached, self._graded_at)
        return check_bundle(self._cached.check(check_id), self._cached, self._graded_at)

    def _check_bundle(self, check_id: str) -> dict[str, Any]:
        self._grade()
        return self._bundle(check_id)

    def _lab_bundle(self) -> dict[str, Any]:
        self._grade()
        return self._bundle(None)

    def _show(self, check_id: str | None) -> None:
        fresh = self._grade()
        if fresh:
            self._refresh()
        handle = _display(self._bundle(check_id), again=self._again)
        if handle is not None:
            self._panels = [*self._panels, (check_id, handle)][-MAX_PANELS:]

    def _again(self) -> None:
        """"Check again": grade now, even when no file changed, and bring every panel up to date."""
        self._grade(force=True)
        self._refresh()

    def _refresh(self) -> None:
        """Update every panel this session showed to the last grading (by display id): a panel showing
        an older result would contradict the report. Batch grading shows no one, and outside a kernel
        (a plain Python shell) an update would only print the panel again, so both skip this."""
        if os.environ.get(BATCH_ENV) or not _live_kernel():
            return
        for check_id, handle in self._panels:
            handle.update(self._bundle(check_id), raw=True)

    def check(self, check_id: str) -> None:
        """Run one check (its prerequisites run too) and show its panel."""
        self.lab.get(check_id)  # an unknown id is the notebook author's bug: fail loudly
        self._show(check_id)

    def report(self) -> None:
        """Run every check and show the whole lab's result (the cell batch grading reads); the
        session's earlier check panels show the same grading (every grading refreshes them)."""
        self._show(None)

    check_all = report


# --- self-check quizzes (ungraded) ------------------------------------------------------------------
LETTERS = "abcdefgh"


def quiz_bundle(question: str, options: Sequence[str], answer: int, explanation: str) -> dict[str, Any]:
    """The question as its own output: options lettered, the answer folded (HTML) or spelled out (text)."""
    text = "\n".join([question, *(f"  {LETTERS[i]}) {o}" for i, o in enumerate(options)),
                      f"Answer: {LETTERS[answer]}) {options[answer]}. {explanation}"])
    # Letters written out, not <ol type="a">: JupyterLab's sanitizer drops the type, and the answer
    # buttons say a, b, c.
    items = "".join(f"<div class='igc-option' style='margin:0.15em 0 0.15em 1em'>{LETTERS[i]}) {rich_text(o)}</div>"
                    for i, o in enumerate(options))
    return {"text/plain": text,
            "text/html": f"<div class='igc-quiz'><strong>{rich_text(question)}</strong><div style='margin:0.3em 0'>"
                         f"{items}</div>"
                         f"<details><summary>Show the answer</summary>{LETTERS[answer]}) {rich_text(options[answer])}. "
                         f"{rich_text(explanation)}</details></div>"}


def quiz(question: str, options: Sequence[str], answer: int, explanation: str) -> None:
    """An ungraded multiple-choice question: the question (HTML and text) as one output, and, with a live
    kernel, answer buttons beside it for instant feedback. Reopened without a kernel, the question and
    its folded answer are still there; only the buttons are gone."""
    from IPython.display import display

    display(quiz_bundle(question, options, answer, explanation), raw=True)
    box = _quiz_widget(options, answer, explanation) if _interactive() else None
    if box is not None:
        display(box)


def _quiz_widget(options: Sequence[str], answer: int, explanation: str) -> Any:
    try:
        import ipywidgets as w
    except ImportError:
        return None
    letters = [LETTERS[i] for i in range(len(options))]
    choice = w.ToggleButtons(options=letters, value=None, description="Your answer:",
                             style={"button_width": "3em"})
    feedback = w.HTML()
    button = w.Button(description="Check my answer")

    def grade(_b: Any) -> None:
        if choice.index is None:
            feedback.value = "Pick an answer first."
            return
        right = choice.index == answer
        verdict = (f"{badge('passed')}Right." if right else
                   f"{badge('failed')}Not quite: the answer is {LETTERS[answer]}) “{rich_text(options[answer])}”.")
        feedback.value = f"<div>{verdict} {rich_text(explanation)}</div>"

    button.on_click(grade)
    return w.VBox([w.HBox([choice, button]), feedback])
