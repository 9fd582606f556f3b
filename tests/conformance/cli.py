"""Runs a conformance case through the command-line contract (``python -m graders analyze|trace -o json``),
in process, so each case checks what a learner or instructor would see, not an internal function.

A case states istiod's expectation as an observable: a trace outcome and destination, a finding and the
object it names, a winner. Each test names the Istio test it was translated from (file, test name, line,
Istio 1.30.3) in its docstring or parameter id.
"""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
from pathlib import Path
from typing import Any

from graders.cli import main


def _run(argv: list[str]) -> tuple[int, dict[str, Any] | None, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    text = out.getvalue()
    return code, (json.loads(text) if text.strip().startswith("{") else None), err.getvalue()


def write_case(tmp: Path, yaml_text: str, name: str = "case.yaml") -> str:
    path = tmp / name
    path.write_text(textwrap.dedent(yaml_text))
    return str(path)


def analyze(tmp: Path, yaml_text: str, *, baseline: bool = True) -> dict[str, Any]:
    """``analyze FILE -o json --fail-on never`` over the simulated lab cluster (or nothing else)."""
    argv = ["analyze", write_case(tmp, yaml_text), "-o", "json", "--fail-on", "never"]
    if not baseline:
        argv.append("--no-baseline")
    code, data, err = _run(argv)
    assert code == 0 and data is not None, f"analyze exited {code}: {err}"
    return data


def trace(tmp: Path, yaml_text: str, *, baseline: bool = True, **request: Any) -> dict[str, Any]:
    """``trace FILE --port P --host H --path X ... -o json``; keyword names are the CLI's option names
    (``gateway``, ``port``, ``host``, ``path``, ``method``, ``sni``) plus ``headers`` (a list of ``NAME:VALUE``);
    ``tls=True`` and ``no_sni=True`` pass the flags ``--tls`` and ``--no-sni``."""
    argv = ["trace", write_case(tmp, yaml_text), "-o", "json"]
    if not baseline:
        argv.append("--no-baseline")
    for key, value in request.items():
        if key == "headers":
            for h in value:
                argv += ["-H", h]
        elif value is True:  # a flag: tls=True -> --tls, no_sni=True -> --no-sni (h9-tls)
            argv.append(f"--{key.replace('_', '-')}")
        else:
            argv += [f"--{key}", str(value)]
    code, data, err = _run(argv)
    assert code == 0 and data is not None, f"trace exited {code}: {err}"
    return data


def codes(result: dict[str, Any]) -> list[str]:
    return [f["code"] for f in result["findings"]]


def findings(result: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [f for f in result["findings"] if f["code"] == code]
