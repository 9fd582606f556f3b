"""``python -m graders``: one parser, one module per command under ``graders.commands``.

Each command module exposes ``add_parser(subparsers)`` (which sets ``func``) and keeps heavy
imports (kubernetes, nbclient) inside its run function so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from graders.errors import EXIT_BAD_INPUT, GraderError

# Order is the order shown in --help.
COMMAND_MODULES = (
    "analyze",
    "trace",
    "check",
    "get",
    "snapshot",
    "cluster",
    "doctor",
    "lab",
    "grade",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m graders",
        description="Graders for the Istio ingress gateway course: analyze configuration, trace a request, "
                    "check a lab, manage the lab cluster, grade a class.",
        epilog="Exit codes: 0 ok; 1 findings at or above the threshold, failed checks, or learners graded with "
               "errors; 2 bad input or unreachable cluster (one line on stderr). doctor: 0 ready, 1 problems.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"graders.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"graders.commands.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GraderError as err:
        from graders.report import terminal_safe

        print(f"error: {terminal_safe(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
