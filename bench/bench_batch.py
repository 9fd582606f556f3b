"""Benchmark: batch-grade 100 snapshot submissions with 1 and 2 workers (kernel reuse on), with 2
workers and a fresh kernel per learner, and -- where it can be set up offline -- the same 100
notebooks with nbgrader's ``autograde``. A class of 10 graded with 1 and 2 workers separates what a
run pays once (start-up, first kernel, gradebooks and plots) from what each further learner adds,
which is where the speed-up with workers shows. Writes bench/results/batch.json.

    .venv/bin/python bench/bench_batch.py [--count 100] [--skip-nbgrader] [--lab PATH]

Not a timed test: numbers depend on the machine and on what else runs on it, so the load average
before and after each run is recorded next to the time.

nbgrader is installed into a separate temporary virtualenv (never the project's); its kernels are
the project's Python (a kernelspec in that venv points at it) so both tools execute the same
notebook code. nbgrader grades one notebook at a time with a fresh kernel each; it has no
parallel mode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from batch_fixtures import lab_notebook, make_snapshot, solution_dir, wrong_attempts  # noqa: E402

NBGRADER = "nbgrader==0.9.6"
SMALL = 10  # learners in the second, small class that separates fixed costs from per-learner costs


def load() -> float:
    return round(os.getloadavg()[0], 2)


def child_cpu() -> float:
    """CPU seconds of finished child processes and their waited-for descendants (the CLI and its
    kernels): unlike wall time, it does not grow when other work competes for the cores."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def make_class(root: Path, count: int) -> Path:
    """``count`` learners with snapshot.yaml: the reference solution and each wrong attempt in turn."""
    subs = root / "subs"
    sources = [solution_dir(), *wrong_attempts()]
    texts = [make_snapshot(s) for s in sources]
    for i in range(count):
        f = subs / f"learner{i:03d}"
        f.mkdir(parents=True)
        (f / "snapshot.yaml").write_text(texts[i % len(texts)])
    return subs


def run_grade(notebook: Path, subs: Path, out: Path, workers: int, *extra: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    before, cpu = load(), child_cpu()
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "graders", "grade", "--lab", str(notebook), str(subs),
                           "--out", str(out), "--workers", str(workers), *extra],
                          cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - start
    cpu = child_cpu() - cpu
    doc = json.loads((out / "gradebook.json").read_text())
    count = len(doc["learners"])
    if proc.returncode != 0 or doc["counts"]["graded"] != count:
        raise SystemExit(f"grade run failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return {"tool": "python -m graders grade", "workers": workers, "kernel_reuse": "--fresh-kernels" not in extra,
            "submissions": count, "seconds": round(seconds, 2),
            "submissions_per_second": round(count / seconds, 2),
            "seconds_per_submission_per_worker": round(seconds * workers / count, 3),
            "cpu_seconds_per_submission": round(cpu / count, 3),
            "load_before": before, "load_after": load()}


# --- nbgrader ------------------------------------------------------------------------------------
def nbgrader_venv(venv: Path) -> tuple[Path | None, str]:
    if not (venv / "bin" / "nbgrader").exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if made.returncode != 0:
            return None, f"could not create a venv: {made.stderr.strip()[-300:]}"
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", NBGRADER], capture_output=True, text=True)
        if pip.returncode != 0:
            return None, f"pip install {NBGRADER} failed: {pip.stderr.strip()[-300:]}"
    # Kernels run the project's Python, so the notebook can import graders and its dependencies.
    spec = venv / "share" / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(REPO / ".venv" / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (course)", "language": "python",
        "env": {"PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}}))
    return venv, ""


def run_nbgrader(root: Path, notebook: Path, subs: Path, venv_dir: Path) -> dict:
    import nbformat

    venv, why = nbgrader_venv(venv_dir)
    if venv is None:
        return {"skipped": why}
    course = root / "course"
    name = "lab"
    (course / "source" / name).mkdir(parents=True)
    shutil.copy(notebook, course / "source" / name / "lab.ipynb")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.course_id = 'bench'\n"
        "c.Exchange.root = " + repr(str(root / "exchange")) + "\n"
        "c.ExecutePreprocessor.timeout = 120\n"
        "c.ClearSolutions.enforce_metadata = False\n"
        "c.ClearMetadataPreprocessor.enabled = False\n")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "jcfg"), "JUPYTER_DATA_DIR": str(venv / "share" / "jupyter"),
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    nbg = [str(venv / "bin" / "nbgrader")]
    gen = subprocess.run([*nbg, "generate_assignment", name, "--force"], cwd=course, env=env,
                         capture_output=True, text=True)
    if gen.returncode != 0:
        return {"skipped": f"nbgrader generate_assignment failed: {gen.stderr.strip()[-400:]}"}
    # Each learner's submitted notebook: the released notebook with their snapshot as the parameter.
    released = nbformat.read(course / "release" / name / "lab.ipynb", as_version=4)
    learners = sorted(p.name for p in subs.iterdir())
    for learner in learners:
        nb = nbformat.from_dict(json.loads(json.dumps(released)))
        for cell in nb.cells:
            if "parameters" in (cell.metadata.get("tags") or []):
                cell.source += f"\nSNAPSHOT = {str(subs / learner / 'snapshot.yaml')!r}\n"
        dest = course / "submitted" / learner / name
        dest.mkdir(parents=True)
        nbformat.write(nb, dest / "lab.ipynb")
        (dest / "timestamp.txt").write_text("2026-11-30 10:00:00.000000 UTC")
    before, cpu = load(), child_cpu()
    start = time.monotonic()
    auto = subprocess.run([*nbg, "autograde", name, "--create", "--force"], cwd=course, env=env,
                          capture_output=True, text=True)
    seconds = time.monotonic() - start
    cpu = child_cpu() - cpu
    graded = len(list((course / "autograded").glob(f"*/{name}/lab.ipynb")))
    if auto.returncode != 0 or graded != len(learners):
        return {"skipped": f"nbgrader autograde failed (exit {auto.returncode}, {graded} notebooks graded): "
                           f"{auto.stderr.strip()[-400:]}"}
    return {"tool": f"nbgrader autograde ({NBGRADER})", "workers": 1, "submissions": graded,
            "seconds": round(seconds, 2), "submissions_per_second": round(graded / seconds, 2),
            "seconds_per_submission_per_worker": round(seconds / graded, 3),
            "cpu_seconds_per_submission": round(cpu / graded, 3),
            "load_before": before, "load_after": load()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--lab", help="lab notebook (default: labs/lab01-*.ipynb, else the test fixture)")
    parser.add_argument("--skip-nbgrader", action="store_true")
    parser.add_argument("--nbgrader-from", metavar="JSON",
                        help="take the nbgrader measurement from an earlier results file instead of re-running it "
                             "(it takes ~7 s per notebook); it keeps its own load figures")
    parser.add_argument("--nbgrader-venv", help="reuse (or create) nbgrader's separate venv here "
                                                "(default: a temporary one, deleted afterwards)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "batch.json"))
    args = parser.parse_args()
    if args.count <= SMALL:
        parser.error(f"--count {args.count}: give more than {SMALL} (a class of {SMALL} measures the fixed costs)")
    notebook = Path(args.lab) if args.lab else lab_notebook()[0]
    root = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        subs = make_class(root, args.count)
        small = make_class(root / "small", SMALL)
        runs = []
        for workers, extra in ((1, ()), (2, ()), (2, ("--fresh-kernels",))):
            r = run_grade(notebook, subs, root / f"out-{workers}-{len(extra)}", workers, *extra)
            print(json.dumps(r), flush=True)
            runs.append(r)
        # Fixed costs (start-up, the first kernel, gradebooks and plots at the end) are paid once per
        # run; the time each further learner adds shows how grading itself scales with workers.
        steady = {}
        for workers in (1, 2):
            r = run_grade(notebook, small, root / f"out-small-{workers}", workers)
            print(json.dumps(r), flush=True)
            full = runs[workers - 1]["seconds"]
            per = (full - r["seconds"]) / (args.count - SMALL)
            steady[workers] = {"small_class": SMALL, "small_class_seconds": r["seconds"],
                               "fixed_seconds": round(full - per * args.count, 2),
                               "seconds_per_further_submission": round(per, 3)}
        speedup = round(runs[0]["seconds"] / runs[1]["seconds"], 2)
        venv_dir = Path(args.nbgrader_venv) if args.nbgrader_venv else root / "nbgrader-venv"
        if args.nbgrader_from:
            nbg = {**json.loads(Path(args.nbgrader_from).read_text())["nbgrader"], "from_earlier_run": True}
        elif args.skip_nbgrader:
            nbg = {"skipped": "--skip-nbgrader"}
        else:
            nbg = run_nbgrader(root, notebook, subs, venv_dir)
        print(json.dumps(nbg), flush=True)
        result = {
            "lab_notebook": str(notebook.relative_to(REPO)), "submissions": args.count,
            "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "system": platform.system()},
            "runs": runs, "nbgrader": nbg,
            "speedup_2_workers_vs_1": speedup,
            "steady_state": steady,
            "steady_speedup_2_workers_vs_1": round(steady[1]["seconds_per_further_submission"]
                                                   / steady[2]["seconds_per_further_submission"], 2),
            "reuse_vs_fresh_kernels_2_workers": round(runs[2]["seconds"] / runs[1]["seconds"], 2),
            "ratio_vs_nbgrader_2_workers": (round(nbg["seconds"] / runs[1]["seconds"], 2)
                                            if "seconds" in nbg else None),
            "cpu_ratio_vs_nbgrader": (round(nbg["cpu_seconds_per_submission"] / runs[1]["cpu_seconds_per_submission"],
                                            2) if "cpu_seconds_per_submission" in nbg else None),
        }
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {out}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
