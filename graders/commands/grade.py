"""``python -m graders grade``: batch-grade a class's submissions for one lab.

Exit codes: 0 every learner graded (whatever their scores), 1 some rows are ``error``,
2 bad arguments or inputs, 130 interrupted (results so far kept; re-run to finish).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graders.deadline import seconds_arg
from graders.errors import EXIT_FINDINGS, EXIT_OK, InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "grade", help="batch-grade a class (one folder or zip per learner) with the lab notebook",
        description="Grade every learner's submission by running the course's pristine lab notebook with "
                    "their target injected as parameters; results are kept per learner and re-runs only "
                    "grade what changed.")
    p.add_argument("submissions", metavar="SUBMISSIONS_DIR", help="folder with one folder or .zip per learner")
    p.add_argument("--lab", required=True, help="lab id (lab01) or path to a lab notebook")
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="where results and gradebooks go")
    p.add_argument("--roster", metavar="FILE", help="CSV: id,name,email[,kubeconfig,context,canvas_id,"
                                                   "sis_user_id,sis_login_id,section]")
    p.add_argument("--workers", type=int, default=None,
                   help="learners graded at once, each by a worker process with its own kernel "
                        "(default: number of cores; about 100 MiB each)")
    p.add_argument("--timeout", type=seconds_arg, default=120.0,
                   help="seconds of notebook execution per learner (default 120; kernel start-up has its own limit)")
    p.add_argument("--mode", choices=("snapshot", "live", "manifests"),
                   help="what to grade (default: snapshot.yaml if present, else manifests/)")
    p.add_argument("--force", action="store_true", help="grade again even learners whose inputs are unchanged")
    p.add_argument("--retry-errors", action="store_true",
                   help="grade again the learners whose row is an error (timeouts on a busy machine...)")
    p.add_argument("--execute-submitted-notebooks", action="store_true",
                   help="run each learner's OWN notebook (untrusted code!) instead of the course's")
    p.add_argument("--fresh-kernels", action="store_true",
                   help="start a new kernel for every learner instead of reusing one per worker (slower)")
    p.add_argument("--canvas-assignment-id", default="",
                   help="Canvas assignment id for the canvas.csv column header (default: the lab id)")
    p.set_defaults(func=run)


def _check_out(out: Path, given: str) -> None:
    """--out must be a folder this user can write in: found out now, before any learner is graded."""
    from graders.outfile import check_target

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {given}: cannot create the folder ({err.strerror}); choose a folder you can write "
                         "to") from None
    check_target(out / "gradebook.csv")


def run(args: argparse.Namespace) -> int:
    from graders.batch import run as batch
    from graders.batch.inputs import read_roster
    from graders.batch.progress import Progress
    from graders.batch.sandbox import find_bwrap

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: give 1 or more")
    submissions, out = Path(args.submissions).resolve(), Path(args.out).resolve()
    if not submissions.is_dir():
        raise InputError(f"{args.submissions}: submissions folder not found; give the folder holding one folder "
                         "or zip per learner")
    if out == submissions or submissions in out.parents:
        raise InputError(f"--out {args.out}: is inside the submissions folder; choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {args.out}: exists and is not a folder")
    if args.execute_submitted_notebooks and args.mode == "live":
        raise InputError("--execute-submitted-notebooks cannot grade live clusters: learner notebooks run in a sandbox "
                         "without network; grade --mode live with the course's notebook (leave the option out)")
    bwrap = find_bwrap() if args.execute_submitted_notebooks else ""
    roster = read_roster(args.roster) if args.roster else {}
    if args.mode == "live" and not roster:
        raise InputError("--mode live needs --roster with kubeconfig and/or context columns per learner")
    lab = batch.resolve_lab(args.lab)
    _check_out(out, args.out)
    opts = batch.Options(
        lab=lab, submissions=submissions, out=out, roster=roster,
        workers=args.workers or batch.default_workers(), timeout=args.timeout, mode=args.mode, force=args.force,
        retry_errors=args.retry_errors,
        execute_submitted=args.execute_submitted_notebooks, reuse_kernels=not args.fresh_kernels,
        assignment_id=args.canvas_assignment_id, bwrap=bwrap)
    if opts.execute_submitted:
        batch.warn_untrusted()
    progress = Progress(0)

    def on_start(total: int) -> None:
        progress.total = total

    report = batch.run(opts, lambda result, skipped: progress.update(result, skipped=skipped), on_start)
    progress.close()
    where = out / "gradebook.csv"
    if report.interrupted:
        again = ("Re-run the same command to grade the rest." if not args.force else
                 "The others keep their earlier results, listed as pending in gradebook.json; re-run with --force "
                 "to re-grade everyone, or without it to accept the earlier results.")
        print(f"interrupted: {report.total - len(report.pending)} of {report.total} learners have current results; "
              f"gradebooks in {out} list them. {again}", file=sys.stderr)
        return 130
    print(f"{report.graded} graded, {report.errors} error ({report.executed} run now, {report.kept} unchanged "
          f"and kept) -> {where}")
    from graders.batch.gradebook import canvas_notes

    for note in canvas_notes((out / "canvas.csv").read_text(encoding="utf-8"), bool(args.roster)):
        print(note)
    return EXIT_FINDINGS if report.errors else EXIT_OK
