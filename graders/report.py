"""Rendering findings and traces for people (text, colour only on a terminal) and for tools (JSON).

JSON shapes are a stable contract (README "JSON output"): analyze ->
{"mode", "source", "findings": [finding...], "summary": {"error": n, "warning": n, "info": n}};
trace -> Trace.to_json()."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from graders.catalogue import SEVERITIES, Finding
from graders.state import State
from graders.trace import Trace

_COLOURS = {"error": "31", "warning": "33", "info": "36", "ok": "32", "dim": "2", "bold": "1"}


def use_colour(stream: TextIO) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


def paint(text: str, colour: str, enabled: bool) -> str:
    return f"\033[{_COLOURS[colour]}m{text}\033[0m" if enabled else text


def mode_banner(state: State) -> str:
    if state.simulated:
        return (f"Mode: {state.mode} — {state.description}. SIMULATED: computed from the YAML, not observed on a "
                "real cluster.")
    return f"Mode: {state.mode} — {state.description}."


def _wrap(text: str, indent: str, first: str | None = None) -> str:
    return textwrap.fill(text, width=100, initial_indent=first or indent, subsequent_indent=indent,
                         break_on_hyphens=False, break_long_words=False)


def findings_text(state: State, findings: Sequence[Finding], colour: bool = False) -> str:
    lines = [paint(mode_banner(state), "dim", colour), ""]
    if not findings:
        lines.append(paint("No problems found.", "ok", colour))
        return "\n".join(lines)
    for f in findings:
        codes = ", ".join(c for c in (f.istio_code, f.kiali_code) if c)
        head = f"{paint(f.severity.upper(), f.severity, colour)} {paint(f.code, 'bold', colour)}"
        lines.append(head + (f"  (like {codes})" if codes else ""))
        lines.append(_wrap(f.message, "  "))
        lines.append(_wrap("Fix: " + f.hint, "  "))
        lines.append(paint(_wrap("Objects: " + ", ".join(f.resources) + (f"  [{f.origin}]" if f.origin else ""),
                                 "  "), "dim", colour))
        lines.append("")
    counts = Counter(f.severity for f in findings)
    lines.append(", ".join(f"{counts[s]} {s}{'s' if counts[s] != 1 else ''}" for s in SEVERITIES))
    return "\n".join(lines)


def findings_json(state: State, findings: Sequence[Finding]) -> dict[str, Any]:
    counts = Counter(f.severity for f in findings)
    return {"mode": state.mode, "source": state.description, "findings": [f.to_json() for f in findings],
            "summary": {s: counts[s] for s in SEVERITIES}}


def trace_text(state: State, t: Trace, colour: bool = False) -> str:
    r = t.request
    scheme = "https" if r.tls else "http"  # h9-tls: trace --tls
    lines = [paint(mode_banner(state), "dim", colour), "",
             paint(f"{r.method} {scheme}://{r.host}{r.path} -> Service {r.gateway} port {r.port}", "bold", colour)]
    for i, step in enumerate(t.steps, 1):
        mark = " (uncertain)" if step.uncertain else ""
        lines.append(_wrap(f"[{step.step}] {step.result}{mark}", "     ", f"  {i}. "))
        if step.objects:
            lines.append(paint(_wrap("decided by: " + ", ".join(step.objects), "     "), "dim", colour))
    status = f"HTTP {t.http_status}" if t.http_status else "no gateway status"
    good = t.outcome == "ok"
    lines += ["", paint(f"Outcome: {t.outcome} — {t.summary} ({status})", "ok" if good else "error", colour)]
    if t.destination:
        lines.append(f"Destination: {t.destination['service']} port {t.destination['port']}")
    return "\n".join(lines)


def write_json(data: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    json.dump(data, stream, indent=2, sort_keys=False)
    stream.write("\n")
