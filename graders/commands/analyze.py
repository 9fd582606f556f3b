"""`python -m graders analyze`: findings about Gateways and VirtualServices, like istioctl analyze
but resolved the way istiod resolves them, and explained for a learner."""

from __future__ import annotations

import argparse
import sys

from graders.commands._target import add_target_arguments, load_target
from graders.errors import EXIT_FINDINGS, EXIT_OK

THRESHOLDS = {"error": ("error",), "warning": ("error", "warning"), "never": ()}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="find problems in Gateway/VirtualService configuration",
                       description=__doc__.splitlines()[0])
    add_target_arguments(p)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.add_argument("--fail-on", choices=tuple(THRESHOLDS), default="error",
                   help="exit 1 when a finding at or above this severity exists (default: error)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graders import report
    from graders.analyzers import analyze

    state = load_target(args)
    findings = analyze(state)
    if args.output == "json":
        report.write_json(report.findings_json(state, findings))
    else:
        print(report.findings_text(state, findings, report.use_colour(sys.stdout)))
    failing = [f for f in findings if f.severity in THRESHOLDS[args.fail_on]]
    return EXIT_FINDINGS if failing else EXIT_OK
