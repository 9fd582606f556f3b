"""Helpers shared by the grading-matrix test (tests/test_grading_matrix.py) and the per-lab tests: grade
through the command line in process, and assert a wrong attempt's root cause with its words."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from graders.cli import main
from graders.labs import get, lab_dir, run
from graders.labs.matrix import load_matrix


def cli(*argv: str) -> tuple[int, dict[str, Any] | None, str]:
    """``python -m graders ARGV`` in process: (exit code, parsed JSON stdout or None, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    text = out.getvalue()
    return code, (json.loads(text) if text.strip().startswith("{") else None), err.getvalue()


def wrong_attempts(lab_id: str) -> list[str]:
    return sorted(p.name for p in (lab_dir(get(lab_id)) / "wrong").iterdir() if p.is_dir())


def assert_root_cause(lab_id: str, attempt: str, probe: tuple[str, str, str]) -> None:
    """Wrong attempt ``attempt`` fails check ``probe[0]`` (failed, not blocked), its message contains
    ``probe[1]`` and its first hint ``probe[2]``. A matrix row still waiting for another branch's engine
    change (``pending``) is an expected failure while the check passes."""
    check_id, in_message, in_hint = probe
    chk = run(lab_id, paths=[str(lab_dir(get(lab_id)) / "wrong" / attempt)]).check(check_id)
    pending = {r.folder: r.pending for r in load_matrix(lab_id) if r.pending}.get(f"wrong/{attempt}")
    if pending and chk.passed:
        pytest.xfail(f"waits for the engine to report {pending}")
    assert chk.status == "failed", f"{check_id} is the root cause and must fail, not be blocked: {chk.message}"
    assert in_message in chk.message
    assert chk.hint and in_hint in chk.hint
