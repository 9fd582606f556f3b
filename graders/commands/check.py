"""``python -m graders check LAB [PATH... | --snapshot FILE | --context NAME]``: grade one lab.

Exit codes: 0 every check passed, 1 some check failed, 2 bad input or unreachable cluster.
The renderers here (text, junit) are plain functions over a ``LabResult`` so the batch grader
can reuse them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from xml.etree import ElementTree as ET

from graders import deadline
from graders.errors import EXIT_FINDINGS, EXIT_OK

GREEN, RED, YELLOW, DIM, BOLD, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[1m", "\033[0m"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "check", help="grade a lab (live cluster, snapshot, or the simulated lab cluster)",
        description="Grade one lab. With no PATH and no --snapshot/--context, grades labs/labNN/work/ on the "
                    "simulated lab cluster. Exit 0 when every check passes, 1 when some fail, 2 on bad input.")
    p.add_argument("lab", metavar="LAB", help="lab number or id: 1, 01 or lab01")
    p.add_argument("paths", nargs="*", metavar="PATH", help="your YAML files or folders, laid over the target")
    p.add_argument("--snapshot", metavar="FILE", help="grade a snapshot file (python -m graders snapshot)")
    p.add_argument("--context", metavar="NAME", help="grade a live cluster through this kube context")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file for --context")
    deadline.add_argument(p)
    p.add_argument("--no-baseline", action="store_true",
                   help="grade only the given files, without the simulated lab cluster under them")
    p.add_argument("-o", "--output", choices=("text", "json", "junit"), default="text",
                   help="text for people, json for tools, junit XML for CI systems")
    p.set_defaults(func=run)
    p.__class__ = _intermixed(type(p))


def _intermixed(base: type) -> type:
    """``base`` parsing options and PATHs in any order (``check lab01 --no-baseline work/``): plain
    argparse stops filling a positional list once an option comes between its items."""
    def parse_known_args(self, args=None, namespace=None):
        if getattr(self, "_inside", False):
            return base.parse_known_args(self, args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False

    return type(f"Intermixed{base.__name__}", (base,), {"parse_known_args": parse_known_args})


def run(args: argparse.Namespace) -> int:
    from graders.labs import run as run_lab
    from graders.report import safe_result

    # the read and every live request and port-forward of the checks
    with deadline.cluster_scope(args.deadline, live=bool(args.context or args.kubeconfig)):
        result = run_lab(args.lab, paths=args.paths or None, snapshot=args.snapshot, context=args.context,
                         kubeconfig=args.kubeconfig, baseline=not args.no_baseline)
    if args.output == "json":
        print(json.dumps(result.to_json(), indent=2))
    elif args.output == "junit":
        print(render_junit(result))
    else:
        print(printable(render_text(safe_result(result), color=_use_color(sys.stdout)), sys.stdout.encoding))
    return EXIT_OK if result.all_passed else EXIT_FINDINGS


_ASCII = str.maketrans({"✅": "[ok]", "❌": "[FAIL]", "⏭": "[blocked]", "⏸": "[not evaluated]", "\ufe0f": "",
                        "💡": "*", "“": '"', "”": '"',
                        "—": "-", "→": "->"})


def printable(text: str, encoding: str | None) -> str:
    """The report as the terminal can show it: ASCII marks when its encoding has no emoji."""
    try:
        text.encode(encoding or "utf-8")
        return text
    except UnicodeEncodeError:
        return text.translate(_ASCII).encode(encoding or "ascii", "replace").decode(encoding or "ascii")


def _use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _painter(color: bool):
    return (lambda code, text: f"{code}{text}{RESET}") if color else (lambda code, text: text)


def render_text(result, *, color: bool = False) -> str:
    c = _painter(color)
    lines = [c(BOLD, f"{result.lab}: {result.title}"), c(DIM, f"mode: {result.mode} ({result.description})")]
    lines += [c(DIM, note) for note in result.notes]
    lines.append("")
    for chk in result.checks:
        lines += check_lines(chk, color=color)
    lines.append("")
    lines.append(c(BOLD, f"score {result.score}/{result.max_score}: {verdict(result)}"))
    if result.not_evaluated_points:
        n = result.not_evaluated_points
        why = "they need a live cluster" if result.mode != "live" else "see why above"
        lines.append(c(DIM, f"{n} more point{'s' if n != 1 else ''} not evaluated ({why}): left out of the score."))
    if not result.all_passed and result.chapter:
        lines.append(c(DIM, f"Stuck? The background is in {result.chapter}.md."))
    return "\n".join(lines)


def verdict(result) -> str:
    """"all checks passed", or how many failed and how many are blocked by them (counted apart)."""
    counted = [c for c in result.checks if c.counted]
    if result.all_passed:
        return "all checks passed" if len(counted) == len(result.checks) else "all evaluated checks passed"
    failed = sum(c.status == "failed" for c in counted)
    blocked = sum(c.status == "blocked" for c in counted)
    return (f"{failed} of {len(counted)} checks failed" + (f", {blocked} blocked by them" if blocked else ""))


_MARKS = {"passed": "✅", "failed": "❌", "blocked": "⏭️ ", "not-evaluated": "⏸️ "}


def check_lines(chk, *, color: bool = False) -> list[str]:
    """One check as text: mark, title, id and points, the message, then the hints when it failed."""
    c = _painter(color)
    pts = f"{chk.points if chk.passed else 0}/{chk.points}"
    if chk.status == "blocked":
        pts += ", blocked"
    elif chk.status == "not-evaluated":
        pts = f"{chk.points} pt not counted: not evaluated here"
    lines = [f"{_MARKS[chk.status]} {c(BOLD, chk.title)} {c(DIM, f'[{chk.id}, {pts}]')}",
             f"   {c(GREEN if chk.passed else (RED if chk.status == 'failed' else DIM), chk.message)}"]
    if chk.status == "failed":
        for i, hint in enumerate(chk.hints):
            label = "💡 hint:" if i == 0 else "💡 still stuck?"
            lines.append(f"   {c(YELLOW, label)} {hint}")
    return lines


def render_junit(result) -> str:
    """One testsuite, one testcase per check: a failed check is a <failure> with its message and hints; a
    blocked or not-evaluated one is <skipped> (one mistake is one failure; no evidence is no verdict)."""
    failures = sum(c.status == "failed" for c in result.checks)
    skipped = sum(c.status in ("blocked", "not-evaluated") for c in result.checks)
    from graders.report import xml_safe

    suite = ET.Element("testsuite", name=f"{result.lab}: {result.title}", tests=str(len(result.checks)),
                       failures=str(failures), errors="0", skipped=str(skipped))
    props = ET.SubElement(suite, "properties")
    for name, value in (("mode", result.mode), ("target", result.description), ("score", str(result.score)),
                        ("max_score", str(result.max_score)),
                        ("not_evaluated_points", str(result.not_evaluated_points))):
        ET.SubElement(props, "property", name=name, value=value)
    for chk in result.checks:
        case = ET.SubElement(suite, "testcase", classname=result.lab, name=f"{chk.id}: {chk.title}")
        case.set("points", str(chk.points))
        case.set("status", chk.status)
        if chk.status == "failed":
            fail = ET.SubElement(case, "failure", message=chk.message, type="failed")
            fail.text = "\n".join([chk.message, *(f"hint: {h}" for h in chk.hints)])
        elif chk.status in ("blocked", "not-evaluated"):
            ET.SubElement(case, "skipped", message=chk.message, type=chk.status)
        else:
            ET.SubElement(case, "system-out").text = chk.message
    ET.indent(suite)
    return xml_safe(ET.tostring(suite, encoding="unicode", xml_declaration=True))
