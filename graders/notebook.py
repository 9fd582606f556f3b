"""Lab checks inside a Jupyter notebook: a pass/fail panel a learner reads, and output a machine reads.

Every check cell emits ONE display_data whose bundle holds, side by side:

- ``text/html``: the panel (✅/❌, the one-sentence result, the first hint and a folded second one);
- ``text/plain``: the same result as text, so a plain-text viewer (or nbconvert to text) has it too;
- ``application/vnd.istio-gateway-course.check+json``: the check's JSON, exactly as in
  ``python -m graders check LAB -o json`` (one entry of "checks").

The whole-lab cell emits ``application/vnd.istio-gateway-course.lab-result+json`` whose payload is
that command's whole JSON, so batch grading reads the notebook's outputs instead of re-grading.
When the target cannot be graded at all (a snapshot that is not YAML, an unreachable cluster), the
panel says why and ``application/vnd.istio-gateway-course.lab-error+json`` carries the same line
with its exit code, so batch grading reports it without scraping the panel's text.
A "Check again" button (ipywidgets) re-runs the check in place when a live kernel is there; the
result never lives only in the widget.

The target comes from the notebook's ``parameters`` cell (CONTEXT, KUBECONFIG, SNAPSHOT,
MANIFESTS). All None: the learner's ``labs/labNN/work/`` on the simulated lab cluster, found from
the repository root, so the notebook can run from any working directory.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from graders.checks import CheckResult, LabResult
from graders.errors import GraderError
from graders.sources.simulated import REPO_ROOT

MIME_CHECK = "application/vnd.istio-gateway-course.check+json"
MIME_LAB = "application/vnd.istio-gateway-course.lab-result+json"
MIME_ERROR = "application/vnd.istio-gateway-course.lab-error+json"

_STYLE = {"pass": ("#1a7f37", "#e6f4ea"), "fail": ("#b42318", "#fdecea"), "skip": ("#57606a", "#f3f4f6")}


def _esc(text: str) -> str:
    """Escape for HTML, rendering `code` spans as <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _state(chk: CheckResult) -> str:
    return "pass" if chk.passed else ("skip" if chk.skipped else "fail")


def check_html(chk: CheckResult) -> str:
    fg, bg = _STYLE[_state(chk)]
    mark = {"pass": "✅", "fail": "❌", "skip": "⏭️"}[_state(chk)]
    pts = f"{chk.points if chk.passed else 0}/{chk.points} pt"
    out = [f'<div class="igc-check igc-{_state(chk)}" style="border-left:4px solid {fg};background:{bg};'
           f'padding:0.5em 0.8em;margin:0.4em 0;border-radius:4px">',
           f'<div><strong>{mark} {_esc(chk.title)}</strong> <span style="color:#57606a">({_esc(chk.id)}, {pts})'
           '</span></div>',
           f'<div style="color:{fg};margin-top:0.2em">{_esc(chk.message)}</div>']
    if not chk.passed and chk.hints:
        out.append(f'<div style="margin-top:0.3em">💡 <strong>Hint:</strong> {_esc(chk.hints[0])}</div>')
        for more in chk.hints[1:]:
            out.append(f'<details style="margin-top:0.2em"><summary>Still stuck? Another hint</summary>'
                       f'{_esc(more)}</details>')
    out.append("</div>")
    return "".join(out)


def _banner(result: LabResult) -> str:
    return " ".join(result.notes) or f"Target: {result.description}."


def lab_html(result: LabResult) -> str:
    ok = result.all_passed
    fg, _ = _STYLE["pass" if ok else "fail"]
    head = (f'<div class="igc-lab"><div style="font-size:1.1em"><strong>{_esc(result.lab)}: {_esc(result.title)}'
            f'</strong> — <span style="color:{fg}"><strong>score {result.score}/{result.max_score}</strong>'
            f'{" (all checks passed)" if ok else ""}</span></div>'
            f'<div style="color:#57606a;font-size:0.9em">{_esc(_banner(result))}</div>')
    tail = (f'<div style="color:#57606a">Stuck? The background is in <code>{_esc(result.chapter)}.md</code>.</div>'
            if result.chapter and not ok else "")
    return head + "".join(check_html(c) for c in result.checks) + tail + "</div>"


MODE_NOTES = {"simulated": "simulated lab cluster: requests are traced, not sent",
              "manifests": "your files only: requests are traced, not sent",
              "live": "live cluster", "snapshot": "snapshot file"}


def check_bundle(chk: CheckResult, result: LabResult) -> dict[str, Any]:
    from graders.commands.check import check_lines

    mode = MODE_NOTES.get(result.mode, result.mode)
    text = "\n".join([*check_lines(chk), f"   ({mode})"])
    note = f'<div style="color:#57606a;font-size:0.8em;margin-top:-0.3em">{_esc(mode)}</div>'
    return {"text/plain": text, "text/html": check_html(chk) + note, MIME_CHECK: chk.to_json()}


def lab_bundle(result: LabResult) -> dict[str, Any]:
    from graders.commands.check import render_text

    return {"text/plain": render_text(result), "text/html": lab_html(result), MIME_LAB: result.to_json()}


def error_bundle(err: GraderError, lab_id: str) -> dict[str, Any]:
    text = f"Could not grade: {err}"
    return {"text/plain": text, MIME_ERROR: {"lab": lab_id, "message": str(err), "exit_code": err.exit_code},
            "text/html": f'<div class="igc-error" style="border-left:4px solid #b42318;background:#fdecea;'
                         f'padding:0.5em 0.8em">❌ <strong>Could not grade.</strong> {_esc(str(err))}</div>'}


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


def _display(bundle: dict[str, Any], *, rerun: Callable[[], dict[str, Any]] | None = None) -> None:
    from IPython.display import display

    handle = display(bundle, raw=True, display_id=True)
    if rerun is None or not _interactive():
        return
    try:
        import ipywidgets
    except ImportError:
        return
    button = ipywidgets.Button(description="Check again", icon="refresh", tooltip="Re-run this check now")

    def again(_button: Any) -> None:
        handle.update(rerun(), raw=True)

    button.on_click(again)
    display(button)


def _resolve(path: str) -> str:
    """A MANIFESTS entry: as given when it exists (relative to the notebook's folder), else from the repo root."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return str(p)
    return str(REPO_ROOT / p)


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
        from graders.labs import run

        key = self._fingerprint()
        if key is None or key != self._cached_key:
            self._cached = run(self.lab, paths=self.paths, snapshot=self.snapshot, context=self.context,
                               kubeconfig=self.kubeconfig)
            self._cached_key = key
        return self._cached

    def _fingerprint(self) -> tuple | None:
        if self.context or self.kubeconfig:
            return None
        from graders.labs import lab_dir

        roots = [Path(p) for p in self.paths or [lab_dir(self.lab) / "work"]] + [lab_dir(self.lab) / "start"]
        roots += [Path(self.snapshot)] if self.snapshot else []
        files = [f for r in roots for f in ([r] if r.is_file() else sorted(r.rglob("*")) if r.is_dir() else [])
                 if f.is_file()]
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)

    def _check_bundle(self, check_id: str) -> dict[str, Any]:
        try:
            result = self.result()
        except GraderError as err:
            return error_bundle(err, self.lab.id)
        return check_bundle(result.check(check_id), result)

    def _lab_bundle(self) -> dict[str, Any]:
        try:
            return lab_bundle(self.result())
        except GraderError as err:
            return error_bundle(err, self.lab.id)

    def check(self, check_id: str) -> None:
        """Run one check (its prerequisites run too) and show its panel."""
        self.lab.get(check_id)  # an unknown id is the notebook author's bug: fail loudly
        _display(self._check_bundle(check_id), rerun=lambda: self._check_bundle(check_id))

    def report(self) -> None:
        """Run every check and show the whole lab's result (the cell batch grading reads)."""
        _display(self._lab_bundle(), rerun=self._lab_bundle)

    check_all = report


# --- self-check quizzes (ungraded) ------------------------------------------------------------------
def quiz(question: str, options: Sequence[str], answer: int, explanation: str) -> None:
    """An ungraded multiple-choice question: radio buttons with instant feedback when widgets work,
    otherwise the question with a folded answer (HTML) and the answer spelled out (text)."""
    from IPython.display import display

    letters = "abcdefgh"
    text = "\n".join([question, *(f"  {letters[i]}) {o}" for i, o in enumerate(options)),
                      f"Answer: {letters[answer]}) {options[answer]}. {explanation}"])
    items = "".join(f"<li>{_esc(o)}</li>" for o in options)
    bundle: dict[str, Any] = {
        "text/plain": text,
        "text/html": f"<div><strong>{_esc(question)}</strong><ol type='a'>{items}</ol><details><summary>"
                     f"Show the answer</summary>{_esc(options[answer])}. {_esc(explanation)}</details></div>"}
    box = _quiz_widget(question, options, answer, explanation) if _interactive() else None
    if box is not None:
        # One output: frontends with a widget manager show the widget, others the HTML or text.
        bundle.update({k: v for k, v in box._repr_mimebundle_().items() if k != "text/plain"})
    display(bundle, raw=True)


def _quiz_widget(question: str, options: Sequence[str], answer: int, explanation: str) -> Any:
    try:
        import ipywidgets as w
    except ImportError:
        return None
    choice = w.RadioButtons(options=list(options), value=None, layout={"width": "max-content"})
    feedback = w.HTML()
    button = w.Button(description="Check my answer")

    def grade(_b: Any) -> None:
        if choice.index is None:
            feedback.value = "Pick an answer first."
            return
        right = choice.index == answer
        verdict = "✅ Right." if right else f"❌ Not quite: the answer is “{_esc(options[answer])}”."
        feedback.value = f"<div>{verdict} {_esc(explanation)}</div>"

    button.on_click(grade)
    return w.VBox([w.HTML(f"<strong>{_esc(question)}</strong>"), choice, button, feedback])
