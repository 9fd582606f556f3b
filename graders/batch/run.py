"""One batch run: plan (what is new), execute (in parallel), store (as each learner finishes),
then rebuild the gradebooks from the stored results -- also after Ctrl-C or a crash, so OUT_DIR
is always consistent.

Skipping: a learner is graded again only when the content hash of their inputs, the lab notebook,
the grading code (graders/ minus the batch machinery) and the simulated cluster's files changed,
or with ``--force`` (``--retry-errors``: only the rows in error, e.g. after a timeout on a busy
machine). Live mode always re-grades (the cluster may have changed and has no hash).
Rows that need no kernel (unsafe id, no submission) are recomputed every run; they cost nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import nbformat

import graders
from graders.batch import inputs, pool, sandbox
from graders.batch.execute import Job, KernelSlot
from graders.batch.feedback import feedback_html
from graders.batch.gradebook import canvas_csv, gradebook_csv, gradebook_json
from graders.batch.inputs import RosterEntry, Submission, SubmissionError
from graders.batch.nbparams import (
    CheckDef,
    NotebookProblem,
    clear_outputs,
    compare_results,
    first_markdown_heading,
    harvest,
    inject_parameters,
    parameters_index,
    read_notebook,
)
from graders.batch.store import Store, atomic_write
from graders.batch.summary import summary_html
from graders.errors import InputError
from graders.notebook import BATCH_ENV

REPO = Path(graders.__file__).resolve().parent.parent
MODES = ("snapshot", "live", "manifests")


@dataclass(frozen=True)
class Lab:
    id: str
    title: str
    path: Path
    nb: nbformat.NotebookNode
    fingerprint: str
    definition: tuple[CheckDef, ...] | None = None  # the checks graders/labs defines for it, when it is a course lab


@dataclass
class Options:
    lab: Lab
    submissions: Path
    out: Path
    roster: dict[str, RosterEntry] = field(default_factory=dict)
    workers: int = 1
    timeout: float = 120.0
    mode: str | None = None
    force: bool = False
    retry_errors: bool = False
    execute_submitted: bool = False
    reuse_kernels: bool = True
    assignment_id: str = ""
    bwrap: str = ""  # the sandbox binary, checked before the run (--execute-submitted-notebooks)


@dataclass
class RunReport:
    total: int = 0
    executed: int = 0  # learners whose notebook ran this time
    kept: int = 0  # unchanged learners whose stored result was kept
    graded: int = 0
    errors: int = 0
    pending: list[str] = field(default_factory=list)
    interrupted: bool = False
    kernel_starts: int = 0
    seconds: float = 0.0


# --- the lab -------------------------------------------------------------------------------------
@cache
def grading_code_fingerprint() -> str:
    """Hash of everything that decides a score: grading code and the simulated cluster's files."""
    h = hashlib.sha256(graders.__version__.encode())
    pkg = REPO / "graders"
    files = [p for p in sorted(pkg.rglob("*.py")) if not {"batch", "commands"} & set(p.relative_to(pkg).parts)]
    files += sorted((REPO / "labs" / "cluster").glob("*.yaml"))
    for p in files:
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def resolve_lab(spec: str) -> Lab:
    """``lab01``, ``01``, ``1`` or a path to a notebook following the course's parameters contract."""
    path = Path(spec)
    if spec.endswith(".ipynb"):
        if not path.is_file():
            raise InputError(f"{spec}: lab notebook not found")
        m = re.match(r"(lab\d+)", path.name)
        lab_id = m.group(1) if m else path.stem
    else:
        m = re.fullmatch(r"(?:lab)?0*(\d{1,2})", spec.strip().lower())
        if not m:
            raise InputError(f"--lab {spec!r}: give a lab id such as lab01 (or a path to a lab notebook)")
        lab_id = f"lab{int(m.group(1)):02d}"
        found = sorted((REPO / "labs").glob(f"{lab_id}-*.ipynb"))
        if not found:
            raise InputError(f"--lab {spec}: no notebook labs/{lab_id}-*.ipynb in {REPO}; is the lab written yet?")
        path = found[0]
    raw = path.read_text(encoding="utf-8")
    try:
        nb = read_notebook(raw, str(path))
    except NotebookProblem as err:
        raise InputError(f"{err}; the course's lab notebook must be valid") from None
    if parameters_index(nb) is None:
        raise InputError(f"{path}: no code cell tagged 'parameters'; batch grading injects each learner's target "
                         "after that cell (add the tag in JupyterLab: Property Inspector > Cell Tags)")
    fingerprint = hashlib.sha256(raw.encode() + grading_code_fingerprint().encode()).hexdigest()
    return Lab(lab_id, _lab_title(lab_id, nb), path.resolve(), nb, fingerprint, lab_definition(lab_id))


def lab_definition(lab_id: str) -> tuple[CheckDef, ...] | None:
    """The lab's checks from the registry (graders/labs); None for a notebook that is not a course lab."""
    from graders import labs

    if lab_id not in labs.LAB_IDS or lab_id not in labs.available():
        return None
    return tuple(CheckDef(c.id, c.title, c.points, tuple(c.needs)) for c in labs.get(lab_id).checks)


def _lab_title(lab_id: str, nb: nbformat.NotebookNode) -> str:
    with contextlib.suppress(Exception):
        import importlib

        return str(importlib.import_module(f"graders.labs.{lab_id}").LAB.title)
    heading = first_markdown_heading(nb) or lab_id
    return re.sub(r"^(Lab\s*\d+\s*[:\-\u2013\u2014]\s*)", "", heading).strip() or lab_id


# --- planning ------------------------------------------------------------------------------------
@dataclass
class Planned:
    sub: Submission
    stem: str
    hash: str
    problem: str | None


def plan(opts: Options, subs: list[Submission]) -> list[Planned]:
    out = []
    for sub in subs:
        entry = sub.roster
        extra = "|".join([opts.lab.fingerprint, f"mode={opts.mode}", f"exec={opts.execute_submitted}",
                          f"live={entry.context if entry else ''},{entry.kubeconfig if entry else ''}"])
        problem = sub.problem
        try:
            digest = inputs.content_hash(sub, extra)
        except (SubmissionError, OSError) as err:
            problem = problem or str(err)
            digest = hashlib.sha256(f"{extra}|problem={problem}".encode()).hexdigest()
        out.append(Planned(sub, inputs.result_stem(sub.learner), digest, problem))
    return out


# --- one learner ---------------------------------------------------------------------------------
def base_result(p: Planned, opts: Options) -> dict[str, Any]:
    return {"learner": p.sub.display, "name": p.sub.roster.name if p.sub.roster else "", "lab": opts.lab.id,
            "status": "error", "score": None, "max_score": None, "checks": [], "reason": "", "mode": "",
            "input_hash": p.hash, "unsafe_id": not p.sub.safe, "seconds": 0.0, "kernel_reused": False}


def _kernel_env(out: Path) -> dict[str, str]:
    """The course's kernels: the grader's environment, plus BATCH_ENV, which marks the kernels of this
    run (to find strays) and tells the lab notebook not to build "Check again" widgets nobody clicks."""
    pythonpath = os.pathsep.join(x for x in (str(REPO), os.environ.get("PYTHONPATH", "")) if x)
    return {**os.environ, "PYTHONPATH": pythonpath, "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            BATCH_ENV: str(out)}


def sandbox_env() -> dict[str, str]:
    """A learner's own code gets no instructor secrets (tokens, cloud credentials) and no paths of
    the class or the output folder: only what the sandbox adds (graders.batch.sandbox)."""
    keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ") if k in os.environ}
    path = os.pathsep.join([str(Path(sys.prefix).resolve() / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    return {**keep, "PATH": path, "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            BATCH_ENV: "sandboxed"}


def _target(folder: Path | None, p: Planned, opts: Options) -> tuple[str, dict[str, Any]]:
    """Which input is graded and the parameters that point the notebook at it."""
    params: dict[str, Any] = {"CONTEXT": None, "KUBECONFIG": None, "SNAPSHOT": None, "MANIFESTS": None}
    entry = p.sub.roster
    if opts.mode == "live":
        if not entry or not (entry.context or entry.kubeconfig):
            raise SubmissionError("live mode needs a kubeconfig and/or context for this learner in the roster")
        if entry.kubeconfig and not Path(entry.kubeconfig).is_file():
            raise SubmissionError(f"the roster's kubeconfig {entry.kubeconfig} does not exist")
        return "live", {**params, "CONTEXT": entry.context or None, "KUBECONFIG": entry.kubeconfig or None}
    if folder is None:
        raise SubmissionError("no submission folder")
    snap, manifests = inputs.snapshot_file(folder), inputs.manifests_dir(folder, opts.lab.id)
    if opts.mode in (None, "snapshot") and snap:
        return "snapshot", {**params, "SNAPSHOT": str(snap)}
    if opts.mode in (None, "manifests") and manifests:
        return "manifests", {**params, "MANIFESTS": [str(manifests)]}
    yaml_dirs = f"YAML files in manifests/, work/ or labs/{opts.lab.id}/work/"  # what manifests_dir reads
    wanted = {"snapshot": "snapshot.yaml", "manifests": yaml_dirs}.get(opts.mode or "",
                                                                      f"snapshot.yaml and no {yaml_dirs}")
    note = ("; a notebook's stored outputs are never trusted (use --execute-submitted-notebooks to run it)"
            if any(folder.rglob("*.ipynb")) and not opts.execute_submitted else "")
    raise SubmissionError(f"no {wanted} in the submission{note}")


async def grade_one(p: Planned, slot: KernelSlot, opts: Options, store: Store) -> dict[str, Any]:
    result = base_result(p, opts)
    executed: str | None = None
    scratch = Path(tempfile.mkdtemp(prefix=f"{p.stem}-", dir=store.out / ".work"))
    scrub: list[str] = []
    try:
        folder = p.sub.path
        if p.sub.is_zip and folder is not None:
            folder = inputs.unpack_zip(folder, scratch / "unpacked")
        if folder is not None:
            scrub.append(str(folder))
        mode, params = _target(folder, p, opts)
        result["mode"] = mode
        # The course's own notebook grades the learner's files (trusted code, the learner's files read as data).
        run_nb, at = inject_parameters(opts.lab.nb, params)
        env = _kernel_env(store.out)
        outcome = await slot.execute(Job(run_nb, opts.lab.path.parent, True, opts.timeout, env, at))
        result["seconds"] = round(outcome.seconds, 3)
        result["kernel_reused"] = outcome.reused_kernel
        # Plain JSON: nbformat.writes would validate the whole notebook again (a tenth of this
        # process's work per learner); nbclient has validated every output as it arrived.
        executed = json.dumps(outcome.nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        if outcome.error:
            raise SubmissionError(outcome.error)
        payload = harvest(outcome.nb, opts.lab.id, opts.lab.definition)
        if opts.execute_submitted:
            claimed_nb, seconds = await _run_submitted(folder, p, opts, params, scratch, scrub)
            result["seconds"] = round(outcome.seconds + seconds, 3)
            executed = json.dumps(claimed_nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
            claimed = harvest(nbformat.from_dict(claimed_nb), opts.lab.id, opts.lab.definition)
            mismatch = compare_results(claimed, payload)
            if mismatch:
                raise SubmissionError(mismatch)
        result.update(status="graded", score=payload["score"], max_score=payload["max_score"],
                      checks=payload["checks"])
    except (SubmissionError, NotebookProblem) as err:
        result["reason"] = str(err)
    except Exception as err:  # a bug or an OS error must cost one row, never the batch
        result["reason"] = f"internal error while grading: {type(err).__name__}: {err}"
    finally:
        inputs.remove_tree(scratch)
    # Learner-facing text shows paths relative to their own files (and stays the same from run to run).
    result["reason"] = _relative(result["reason"], scrub)
    for c in result["checks"]:
        c["message"] = _relative(c["message"], scrub)
        c["hint"] = None if c["hint"] is None else _relative(c["hint"], scrub)
    # Stored by the worker before the parent hears of it, so a result reported is a result kept.
    store.save(p.stem, result, feedback_html(result, opts.lab.title), executed)
    return result


async def _run_submitted(folder: Path | None, p: Planned, opts: Options, params: dict[str, Any], scratch: Path,
                         scrub: list[str]) -> tuple[dict[str, Any], float]:
    """The learner's own notebook, outputs cleared, run in the sandbox on its own copy of the
    submission. Returns the executed notebook (untrusted: harvested and checked by the caller)."""
    if folder is None:
        raise SubmissionError("no submission folder, so no notebook of the learner's to run")
    copy = scratch / "run"
    shutil.copytree(folder, copy, symlinks=True)
    scrub.append(sandbox.INSIDE)
    nb_path = inputs.submitted_notebook(copy, opts.lab.path.name)
    nb = clear_outputs(read_notebook(nb_path.read_text(encoding="utf-8", errors="replace"),
                                     f"notebook {nb_path.name}"))

    def inside(value: str) -> str:
        return value.replace(str(folder), sandbox.INSIDE)

    params = {k: (inside(v) if isinstance(v, str) else [inside(x) for x in v] if isinstance(v, list) else v)
              for k, v in params.items()}
    run_nb, at = inject_parameters(nb, params)
    env = sandbox_env()
    done = await sandbox.run(opts.bwrap, REPO, opts.lab.id, copy, run_nb, opts.timeout, at, env)
    if done.error or done.nb is None:
        raise SubmissionError(done.error or "the sandboxed run returned no notebook")
    return done.nb, done.seconds


def _relative(text: str, roots: list[str]) -> str:
    for root in sorted(roots, key=len, reverse=True):
        text = text.replace(root + os.sep, "").replace(root, ".")
    return text


# --- the run -------------------------------------------------------------------------------------
def run(opts: Options, on_result: Callable[[dict[str, Any], bool], None],
        on_start: Callable[[int], None] = lambda _total: None) -> RunReport:
    """Grade the class; ``on_start(total)`` once, then ``on_result(result, skipped)`` per learner, both
    on the calling thread."""
    store = Store(opts.out)
    with store.lock():
        store.prepare()
        (store.out / ".work").mkdir(exist_ok=True)
        subs = inputs.discover(opts.submissions, opts.roster, live=opts.mode == "live").submissions
        planned = plan(opts, subs)
        report = RunReport(total=len(planned))
        on_start(report.total)
        todo: list[Planned] = []
        # Results this run re-grades (--force, --retry-errors, live): kept until replaced, but not current
        # (not in the gradebooks as this run's) unless this run replaced them; stem -> stored file's mtime.
        replaced: dict[str, int] = {}
        for p in planned:
            stored = store.load(p.stem)
            if p.problem:
                result = {**base_result(p, opts), "reason": p.problem}
                unchanged = stored is not None and {k: v for k, v in stored.items() if k != "result_version"} == result
                if not unchanged:
                    store.save(p.stem, result, feedback_html(result, opts.lab.title))
                on_result(result, unchanged)
                report.kept += unchanged
            elif (stored and stored.get("input_hash") == p.hash and not opts.force and opts.mode != "live"
                  and not (opts.retry_errors and stored.get("status") == "error")):
                on_result(stored, True)
                report.kept += 1
            else:
                if stored and stored.get("input_hash") == p.hash:
                    replaced[p.stem] = store.result_path(p.stem).stat().st_mtime_ns
                todo.append(p)
        try:
            report.kernel_starts = _execute_all(todo, opts, store, on_result, report)
        finally:  # every worker has stopped (or was killed): no write is in flight any more
            store.remove_temp_files()
            _rebuild(opts, store, planned, report, replaced)
            inputs.remove_tree(store.out / ".work")
    return report


def _execute_all(todo: list[Planned], opts: Options, store: Store,
                 on_result: Callable[[dict[str, Any], bool], None], report: RunReport) -> int:
    if not todo:
        return 0

    def done(result: dict[str, Any]) -> None:
        report.executed += 1
        on_result(result, False)

    def lost(p: Planned, why: str) -> None:
        result = {**base_result(p, opts), "reason": f"{why}; re-run with --retry-errors"}
        store.save(p.stem, result, feedback_html(result, opts.lab.title))
        done(result)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term) if threading.current_thread() is threading.main_thread() else None
    try:
        return pool.serve(todo, opts.workers, _worker, (opts,), done, lost)
    except KeyboardInterrupt:
        report.interrupted = True
        return 0
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _worker(opts: Options, conn: Any) -> None:
    """One worker process: grades the learners the parent hands it, storing each result itself."""
    store = Store(opts.out)

    async def handle(p: Planned, slot: KernelSlot) -> dict[str, Any]:
        return await grade_one(p, slot, opts, store)

    pool.work(conn, handle, opts.reuse_kernels)


def current_results(store: Store, planned: list[Planned], replaced: Mapping[str, int] | None = None,
                    ) -> tuple[list[dict[str, Any]], list[str]]:
    """Stored results that match the learners' current inputs, and the learners still pending: those
    without one, and those whose earlier result this run was to replace (``replaced``: stem -> that
    file's mtime) but did not, e.g. because it was interrupted."""
    results, pending = [], []
    for p in planned:
        stored = store.load(p.stem)
        outdated = p.stem in (replaced or {}) and store.result_path(p.stem).stat().st_mtime_ns == replaced[p.stem]
        if stored and stored.get("input_hash") == p.hash and not outdated:
            results.append(stored)
        else:
            pending.append(p.sub.display)
    return results, pending


def _rebuild(opts: Options, store: Store, planned: list[Planned], report: RunReport,
             replaced: Mapping[str, int]) -> None:
    results, pending = current_results(store, planned, replaced)
    report.pending = pending
    report.graded = sum(r["status"] == "graded" for r in results)
    report.errors = sum(r["status"] == "error" for r in results)
    lab = opts.lab
    atomic_write(store.out / "gradebook.csv", gradebook_csv(results, lab.id))
    atomic_write(store.out / "gradebook.json", gradebook_json(results, lab.id, lab.title, pending))
    atomic_write(store.out / "canvas.csv", canvas_csv(results, opts.roster, lab.title, opts.assignment_id or lab.id))
    atomic_write(store.out / "summary.html", summary_html(results, lab.id, lab.title, pending))


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def warn_untrusted(stream: Any = sys.stderr) -> None:
    stream.write(
        "NOTE: --execute-submitted-notebooks runs each learner's own code, inside a bubblewrap sandbox (no network,\n"
        "only a copy of their own submission, killed with all it started afterwards). A notebook's result counts\n"
        "only when it matches the course's own grading of the same files; see the README's batch promises.\n")
    stream.flush()
