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
from dataclasses import replace
from typing import Any, TextIO

from graders.catalogue import SEVERITIES, Finding
from graders.checks import LabResult
from graders.state import State
from graders.trace import Trace

_COLOURS = {"error": "31", "warning": "33", "info": "36", "ok": "32", "dim": "2", "bold": "1"}

# Characters that must not reach a terminal raw: C0 controls but tab and newline (ESC starts the
# ANSI sequences that recolour, retitle or clear a terminal), DEL, C1 controls (U+009B is a one-byte
# CSI), and the bidirectional overrides that make text display in another order than it reads.
_UNSAFE = [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F),
           *range(0x2066, 0x206A)]
_TERMINAL = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _UNSAFE}
# XML 1.0 allows no C0 control but tab, newline and carriage return, nor U+FFFE/U+FFFF or lone surrogates.
_XML = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)]}
_XML.update({c: f"\\u{c:04x}" for c in [0xFFFE, 0xFFFF, *range(0xD800, 0xE000)]})


def terminal_safe(text: str) -> str:
    """``text`` with every character that could drive a terminal shown as an escape (``\\x1b``).
    Everything printed for people goes through it: object names from YAML, request headers and API
    error bodies are whatever someone wrote there."""
    return text.translate(_TERMINAL)


def safe_result(result: LabResult) -> LabResult:
    """A lab result whose every text is ``terminal_safe``, for renderers that add their own colour codes."""
    t = terminal_safe
    checks = tuple(replace(c, id=t(c.id), title=t(c.title), message=t(c.message), hints=tuple(map(t, c.hints)))
                   for c in result.checks)
    return replace(result, title=t(result.title), mode=t(result.mode), description=t(result.description),
                   checks=checks, notes=tuple(map(t, result.notes)))


def xml_safe(text: str) -> str:
    """``text`` (or serialized XML) with the characters XML 1.0 cannot carry shown as escapes, so a
    name holding a control character still gives a well-formed document."""
    return text.translate(_XML)


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
    return textwrap.fill(terminal_safe(text), width=100, initial_indent=first or indent, subsequent_indent=indent,
                         break_on_hyphens=False, break_long_words=False)


def findings_text(state: State, findings: Sequence[Finding], colour: bool = False) -> str:
    lines = [paint(terminal_safe(mode_banner(state)), "dim", colour), ""]
    if not findings:
        lines.append(paint("No problems found.", "ok", colour))
        return "\n".join(lines)
    for f in findings:
        codes = ", ".join(c for c in (f.istio_code, f.kiali_code) if c)
        head = f"{paint(f.severity.upper(), f.severity, colour)} {paint(f.code, 'bold', colour)}"
        lines.append(head + terminal_safe(f"  (like {codes})" if codes else ""))
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
    lines = [paint(terminal_safe(mode_banner(state)), "dim", colour), "",
             paint(terminal_safe(f"{r.method} {scheme}://{r.host}{r.path} -> Service {r.gateway} port {r.port}"),
                   "bold", colour)]
    for i, step in enumerate(t.steps, 1):
        mark = " (uncertain)" if step.uncertain else ""
        lines.append(_wrap(f"[{step.step}] {step.result}{mark}", "     ", f"  {i}. "))
        if step.objects:
            lines.append(paint(_wrap("decided by: " + ", ".join(step.objects), "     "), "dim", colour))
    status = f"HTTP {t.http_status}" if t.http_status else "no gateway status"
    good = t.outcome == "ok"
    lines += ["", paint(terminal_safe(f"Outcome: {t.outcome} — {t.summary} ({status})"), "ok" if good else "error",
                        colour)]
    if t.destination:
        lines.append(terminal_safe(f"Destination: {t.destination['service']} port {t.destination['port']}"))
    return "\n".join(lines)


def write_json(data: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    json.dump(data, stream, indent=2, sort_keys=False)
    stream.write("\n")
