"""Helpers for the book's code cells.

The book runs each page's cells with the page's folder (chapters/) as working directory, but a
learner types commands from the repository root. ``run`` bridges the two so every example on a
page is the exact command a learner can paste, and its output is the real output of that command.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@contextlib.contextmanager
def at_root():
    """Run a block from the repository root (paths in the examples are relative to it)."""
    before = Path.cwd()
    os.chdir(ROOT)
    try:
        yield ROOT
    finally:
        os.chdir(before)


def run(command: str, *, expect: int | None = None, outcome: str | None = None,
        codes: tuple[str, ...] = ()) -> None:
    """Run ``python -m graders ...`` in-process from the repository root and print what it prints.

    ``expect`` (exit code), ``outcome`` (a trace outcome) and ``codes`` (finding codes that must be
    reported) make the page fail to build when the tool stops agreeing with what the prose around
    the example claims, so the book cannot silently drift from the tools.
    """
    from graders.cli import main

    argv = shlex.split(command)
    if argv[:3] != ["python", "-m", "graders"]:
        raise ValueError(f"not a graders command: {command}")
    out, err = io.StringIO(), io.StringIO()
    with at_root(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv[3:])
        except SystemExit as exc:  # argparse --help / usage errors
            code = exc.code if isinstance(exc.code, int) else 0
    print(f"$ {command}")
    text = out.getvalue() + err.getvalue()
    print(text.rstrip("\n"))
    print(f"[exit code {code}]")
    problems = []
    if expect is not None and code != expect:
        problems.append(f"exit code {code}, expected {expect}")
    if outcome is not None and f"Outcome: {outcome} " not in text:
        problems.append(f"trace outcome is not {outcome!r}")
    problems += [f"finding {c} not reported" for c in codes if c not in text]
    if problems:
        raise AssertionError("the page's claim no longer holds: " + "; ".join(problems))

