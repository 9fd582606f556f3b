"""Batch grading end to end: a generated class of 40 submissions graded by the real CLI in a
subprocess (real nbclient kernels, 2 workers), every row checked; re-runs, interruption and
learner-notebook execution checked on smaller classes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from batch_fixtures import (
    FIXTURE_NOTEBOOK,
    REPO,
    ROSTER_ONLY_UNSAFE,
    UNSAFE_LONG,
    Expect,
    build_class,
    lab_notebook,
    notebook_with_cell,
    oracle,
    read_gradebook_json,
    solution_dir,
    tampered_notebook,
    wrong_attempts,
)

NOTEBOOK, LAB_ID = lab_notebook()
# The mechanics (interruption, re-runs, learner notebooks, live mode) are tested with the small
# fixture notebook: same contract, a fraction of the kernel time of a full lab notebook.
MECH, MECH_ID = FIXTURE_NOTEBOOK, "lab99"


def grade(*args: str, notebook: Path = NOTEBOOK, timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "graders", "grade", "--lab", str(notebook), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)
    # Whatever the outcome, the grader reports in sentences, never with a traceback (from any thread).
    assert "Traceback" not in proc.stderr and "Exception in thread" not in proc.stderr, proc.stderr[-3000:]
    return proc


def kernels_of(out: Path) -> list[psutil.Process]:
    """Kernel processes started by the run writing to ``out`` (they carry GRADERS_BATCH_OUT)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "ipykernel_launcher" in " ".join(proc.info["cmdline"] or []) and \
                    proc.environ().get("GRADERS_BATCH_OUT") == str(out):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    expect, roster = build_class(root / "subs", NOTEBOOK, LAB_ID, size=40)
    out = root / "out"
    started = time.monotonic()
    proc = grade(str(root / "subs"), "--out", str(out), "--roster", str(roster), "--workers", "2")
    return {"root": root, "expect": expect, "roster": roster, "out": out, "proc": proc,
            "seconds": time.monotonic() - started}


def test_class_has_forty_learners_and_every_row_is_as_expected(graded_class):
    expect: dict[str, Expect] = graded_class["expect"]
    rows = read_gradebook_json(graded_class["out"])
    assert len(expect) == 40
    assert sorted(rows) == sorted(expect), graded_class["proc"].stderr[-3000:]
    for learner, exp in expect.items():
        row = rows[learner]
        assert row["status"] == exp.status, (learner, row["reason"])
        if exp.status == "graded":
            assert (row["score"], row["max_score"]) == (exp.score, exp.max_score), learner
            assert [(c["id"], c["passed"]) for c in row["checks"]] == list(exp.checks), learner
            assert row["reason"] == ""
        else:
            assert row["score"] is None and exp.reason in row["reason"], (learner, row["reason"])


def test_the_class_covers_right_and_wrong_answers(graded_class):
    rows = read_gradebook_json(graded_class["out"])
    full = rows["learner02"]["max_score"]
    assert rows["learner02"]["score"] == rows["learner01"]["score"] == full  # manifests and snapshot
    for attempt in wrong_attempts():
        assert rows[f"wrong-{attempt.name}"]["score"] < full, attempt.name
    assert rows["tampered"]["score"] < full  # the pasted PASS panel earned nothing
    assert rows["zipped"]["score"] == full


def test_exit_code_and_closing_line(graded_class):
    proc = graded_class["proc"]
    assert proc.returncode == 1, proc.stderr[-2000:]  # some rows are errors
    counts = json.loads((graded_class["out"] / "gradebook.json").read_text())["counts"]
    assert f"{counts['graded']} graded, {counts['error']} error (" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_plain_progress_line_per_learner_when_not_a_terminal(graded_class):
    lines = [ln for ln in graded_class["proc"].stderr.splitlines() if ln.startswith("[")]
    assert len(lines) == 40 and lines[-1].startswith("[40/40] ")
    assert "\r" not in graded_class["proc"].stderr


def test_no_learner_code_ran_and_no_zip_escaped(graded_class):
    root = graded_class["root"]
    assert not list(root.rglob("PWNED")) and not (REPO / "labs" / "PWNED").exists() and not (REPO / "PWNED").exists()
    assert not list(root.rglob("escaped.txt"))
    assert not (graded_class["out"] / ".work").exists()  # scratch space cleaned up
    assert kernels_of(graded_class["out"]) == []


def test_gradebook_csv_columns_and_rows(graded_class):
    text = (graded_class["out"] / "gradebook.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    check_ids = [c[0] for c in graded_class["expect"]["learner02"].checks]
    assert rows[0] == ["learner", "lab", "status", "score", "max_score", *check_ids, "reason"]
    body = {r[0]: r for r in rows[1:]}
    assert len(body) == 40 and [r[0] for r in rows[1:]] == sorted(body)
    helm = body["wrong-" + wrong_attempts()[0].name]
    exp = graded_class["expect"]["wrong-" + wrong_attempts()[0].name]
    assert helm[2:5] == ["graded", f"{exp.score:g}", f"{exp.max_score:g}"]
    assert body["missing-snapshot"][2] == "error" and body["missing-snapshot"][3] == ""


def test_canvas_import_csv(graded_class):
    rows = list(csv.reader(io.StringIO((graded_class["out"] / "canvas.csv").read_text())))
    title = json.loads((graded_class["out"] / "gradebook.json").read_text())["title"]
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{title} ({LAB_ID})"]
    assert rows[1][0].strip() == "Points Possible"
    assert rows[1][5] == f"{graded_class['expect']['learner02'].max_score:g}"
    by_login = {r[3]: r for r in rows[2:]}
    assert by_login["learner02"][:3] == ["Learner learner02", "", "S-learner02"] and by_login["learner02"][4] == "A"
    assert by_login["missing-snapshot"][5] == ""  # errors leave Canvas's cell untouched
    assert UNSAFE_LONG not in by_login and not any(ROSTER_ONLY_UNSAFE in r[3] for r in rows)


def test_feedback_pages(graded_class):
    fb = graded_class["out"] / "feedback"
    wrong = "wrong-" + wrong_attempts()[0].name
    page = (fb / f"{wrong}.html").read_text()
    row = read_gradebook_json(graded_class["out"])[wrong]
    failed = [c for c in row["checks"] if not c["passed"]]
    assert failed and all(c["hint"] is None or _html(c["hint"]) in page for c in failed)
    assert "<script" not in page and not re.search(r"(src|href)=['\"]?https?:", page)
    err = (fb / "malformed-snapshot.html").read_text()
    assert "could not be graded" in err and "YAML syntax error" in err
    assert str(graded_class["root"]) not in err  # instructor paths are not shown to learners


def _html(text: str) -> str:
    from html import escape

    return escape(text)


def test_summary_page_is_self_contained(graded_class):
    page = (graded_class["out"] / "summary.html").read_text()
    assert page.count("src='data:image/svg+xml;base64,") == 2
    assert "src='http" not in page and "href='http" not in page and "<script" not in page
    assert "Not graded (status error)" in page and "malformed-snapshot" in page


def test_rerun_grades_nothing_new(graded_class):
    out = graded_class["out"]
    before = {p.name: p.stat().st_mtime_ns for p in (out / "results").iterdir()}
    gradebook = (out / "gradebook.csv").read_text()
    proc = grade(str(graded_class["root"] / "subs"), "--out", str(out), "--roster", str(graded_class["roster"]),
                 "--workers", "2")
    assert proc.returncode == 1
    assert "(0 run now, " in proc.stdout, proc.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (out / "results").iterdir()} == before
    assert (out / "gradebook.csv").read_text() == gradebook
    assert proc.stderr.count("(unchanged, kept)") == 40


# --- interruption and resumption -----------------------------------------------------------------
def _small_class(root: Path, n: int = 8) -> Path:
    from batch_fixtures import make_snapshot

    subs = root / "subs"
    snapshot = make_snapshot(solution_dir())
    for i in range(n):
        f = subs / f"s{i:02d}"
        f.mkdir(parents=True)
        if i % 2:
            (f / "snapshot.yaml").write_text(snapshot)
        else:
            (f / "manifests").mkdir()
            for y in wrong_attempts()[i % len(wrong_attempts())].iterdir():
                (f / "manifests" / y.name).write_bytes(y.read_bytes())
    return subs


def test_an_interrupted_forced_rerun_does_not_pass_earlier_results_off_as_current(tmp_path):
    """`grade --force` stopped part-way: the learners it did not re-grade keep their earlier results on
    disk (nothing lost) but are pending in the gradebook, which is not complete."""
    subs = _small_class(tmp_path)
    out = tmp_path / "out"
    assert grade(str(subs), "--out", str(out), "--workers", "2", notebook=MECH).returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    proc = subprocess.Popen([sys.executable, "-m", "graders", "grade", "--lab", str(MECH), str(subs), "--out", str(out),
                             "--workers", "1", "--fresh-kernels", "--force"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
            p.stat().st_mtime_ns != before.get(p.name) for p in (out / "results").glob("*.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    regraded = {p.stem for p in (out / "results").glob("*.json") if p.stat().st_mtime_ns != before[p.name]}
    doc = json.loads((out / "gradebook.json").read_text())
    assert regraded and len(regraded) < len(before), "the run was not interrupted part-way"
    assert not doc["complete"] and set(doc["pending"]) == {p[:-5] for p in before} - regraded
    assert {r["learner"] for r in doc["learners"]} == regraded
    assert f"{len(regraded)} of {len(before)} learners have current results" in stderr
    assert "re-run with --force to re-grade everyone" in stderr
    assert len(list((out / "results").glob("*.json"))) == len(before)  # the earlier results are still there


@pytest.mark.parametrize("ctrl_c", ["parent", "terminal"])
def test_interrupted_run_then_rerun_equals_uninterrupted(tmp_path, ctrl_c):
    """Ctrl-C in a terminal reaches every process of the group (the grader and its workers at once);
    a SIGINT sent to the grader alone must be passed on to the workers."""
    subs = _small_class(tmp_path)
    reference = grade(str(subs), "--out", str(tmp_path / "ref"), "--workers", "2", notebook=MECH)
    assert reference.returncode == 0, reference.stderr[-2000:]

    out = tmp_path / "out"
    # Fresh kernels make each learner slow enough to interrupt part-way.
    proc = subprocess.Popen([sys.executable, "-m", "graders", "grade", "--lab", str(MECH), str(subs),
                             "--out", str(out), "--workers", "2", "--fresh-kernels"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((out / "results").glob("*.json")):
        time.sleep(0.05)
    if ctrl_c == "terminal":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted:" in stderr and "Traceback" not in stderr
    doc = json.loads((out / "gradebook.json").read_text())
    assert not doc["complete"] and doc["pending"], "the run finished before it was interrupted"
    done = {p.stem for p in (out / "results").glob("*.json")}
    assert {r["learner"] for r in doc["learners"]} == done  # the gradebook lists exactly what is stored
    assert not list(out.rglob("*.tmp"))
    time.sleep(0.5)
    assert kernels_of(out) == []  # every kernel was shut down

    again = grade(str(subs), "--out", str(out), "--workers", "2", notebook=MECH)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"({8 - len(done)} run now, {len(done)} unchanged and kept)" in again.stdout
    for name in ("gradebook.csv", "gradebook.json", "canvas.csv"):
        assert (out / name).read_text() == (tmp_path / "ref" / name).read_text(), name


def test_killed_run_loses_nothing_and_leaves_no_kernels(tmp_path):
    """SIGKILL gives the grader no chance to clean up: finished results must still be whole, the
    kernels must notice their parent is gone and exit, and a re-run must finish the class."""
    subs = _small_class(tmp_path, n=4)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "graders", "grade", "--lab", str(MECH), str(subs),
                             "--out", str(out), "--workers", "2", "--fresh-kernels"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((out / "results").glob("*.json")):
        time.sleep(0.05)
    workers = [p for p in psutil.Process(proc.pid).children() if "ipykernel" not in " ".join(p.cmdline())]
    assert workers  # the grading worker processes
    proc.kill()
    proc.wait(timeout=30)
    for f in (out / "results").glob("*.json"):
        assert json.loads(f.read_text())["status"] in ("graded", "error")
    deadline = time.monotonic() + 15
    while (kernels_of(out) or any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kernels_of(out) == []
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)  # orphans stopped
    again = grade(str(subs), "--out", str(out), "--workers", "2", notebook=MECH)
    assert again.returncode == 0 and json.loads((out / "gradebook.json").read_text())["complete"]
    assert not list(out.rglob("*.tmp")) and not (out / ".work").exists()


def test_changed_input_is_regraded_retry_errors_and_force(tmp_path):
    subs = _small_class(tmp_path, n=3)
    (subs / "s03").mkdir()
    (subs / "s03" / "snapshot.yaml").write_text("items: [\n")  # an error row
    out = tmp_path / "out"
    assert grade(str(subs), "--out", str(out), "--workers", "2", notebook=MECH).returncode == 1
    target = subs / "s00" / "manifests"
    for y in target.iterdir():
        y.unlink()
    for y in solution_dir().iterdir():
        (target / y.name).write_bytes(y.read_bytes())
    proc = grade(str(subs), "--out", str(out), "--workers", "2", notebook=MECH)
    assert "(1 run now, 3 unchanged and kept)" in proc.stdout, proc.stdout
    row = read_gradebook_json(out)["s00"]
    assert row["score"] == row["max_score"] == oracle(MECH_ID, MECH, manifests=target)["max_score"]
    proc = grade(str(subs), "--out", str(out), "--workers", "2", "--retry-errors", notebook=MECH)
    assert "3 graded, 1 error (1 run now, 3 unchanged and kept)" in proc.stdout, proc.stdout
    proc = grade(str(subs), "--out", str(out), "--workers", "2", "--force", notebook=MECH)
    assert "(4 run now, 0 unchanged and kept)" in proc.stdout


# --- executing the learners' own notebooks -------------------------------------------------------
def test_execute_submitted_notebooks(tmp_path):
    subs = tmp_path / "subs"
    pristine = MECH.read_text()
    cases = {
        "good": (pristine, solution_dir()),
        "tampered": (tampered_notebook(MECH, MECH_ID), wrong_attempts()[0]),
        "hangs": (notebook_with_cell(MECH, "import time\ntime.sleep(3600)"), solution_dir()),
        "dies": (notebook_with_cell(MECH, "import os\nos._exit(3)"), solution_dir()),
        # The kernel's parent is the sandbox's executor: it dies, the worker grading it does not.
        "kills-parent": (notebook_with_cell(MECH, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"),
                         solution_dir()),
        "malformed": ('{"cells": [', solution_dir()),
    }
    for learner, (nb_text, yaml_dir) in cases.items():
        f = subs / learner
        (f / "manifests").mkdir(parents=True)
        for y in yaml_dir.iterdir():
            (f / "manifests" / y.name).write_bytes(y.read_bytes())
        (f / MECH.name).write_text(nb_text)
    out = tmp_path / "out"
    proc = grade(str(subs), "--out", str(out), "--workers", "2", "--timeout", "10", "--execute-submitted-notebooks",
                 notebook=MECH)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "runs each learner's own code, inside a bubblewrap sandbox" in proc.stderr
    rows = read_gradebook_json(out)
    full = oracle(MECH_ID, MECH, manifests=solution_dir())
    assert rows["good"]["status"] == "graded" and rows["good"]["score"] == full["max_score"]
    wrong = oracle(MECH_ID, MECH, manifests=wrong_attempts()[0])
    assert rows["tampered"]["status"] == "graded" and rows["tampered"]["score"] == wrong["score"] < full["max_score"]
    assert rows["hangs"]["status"] == "error"
    assert "timed out after 10 s while running cell" in rows["hangs"]["reason"]
    assert "time.sleep" in rows["hangs"]["reason"] or "import time" in rows["hangs"]["reason"]
    assert rows["dies"]["status"] == "error" and "kernel died" in rows["dies"]["reason"]
    assert rows["malformed"]["status"] == "error" and "not valid notebook JSON" in rows["malformed"]["reason"]
    assert rows["kills-parent"]["status"] == "error"
    assert "the sandboxed run ended without a readable answer" in rows["kills-parent"]["reason"]
    assert len(rows) == len(cases)
    time.sleep(0.5)
    assert kernels_of(out) == []


def test_execute_submitted_without_bubblewrap_is_refused_with_one_line(tmp_path):
    (tmp_path / "subs").mkdir()
    (tmp_path / "bin").mkdir()  # a PATH without bwrap
    proc = subprocess.run([sys.executable, "-m", "graders", "grade", "--lab", str(MECH), str(tmp_path / "subs"),
                           "--out", str(tmp_path / "out"), "--execute-submitted-notebooks"], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "PATH": str(tmp_path / "bin")})
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "apt-get install -y bubblewrap" in proc.stderr and not (tmp_path / "out").exists()


def test_bad_arguments_exit_2_with_one_line(tmp_path):
    (tmp_path / "subs").mkdir()
    cases = [
        ("--workers", "0"),
        ("--timeout", "-1"),
        ("--timeout", "inf"),
        ("--timeout", "nan"),
        ("--mode", "live"),  # live needs a roster
        ("--mode", "live", "--execute-submitted-notebooks"),  # the sandbox has no network
        ("--roster", str(tmp_path / "nope.csv")),
    ]
    for extra in cases:
        proc = grade(str(tmp_path / "subs"), "--out", str(tmp_path / "out"), *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    proc = grade(str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "submissions folder not found" in proc.stderr
    proc = grade(str(tmp_path / "subs"), "--out", str(tmp_path / "subs" / "out"))
    assert proc.returncode == 2 and "inside the submissions folder" in proc.stderr
    for where in ("/proc/x", "/dev/null/x"):
        proc = grade(str(tmp_path / "subs"), "--out", where)
        assert proc.returncode == 2 and proc.stderr.startswith(f"error: --out {where}: cannot"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([sys.executable, "-m", "graders", "grade", "--lab", "lab77", str(tmp_path / "subs"),
                           "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "no notebook labs/lab77-*.ipynb" in proc.stderr


def test_empty_class_is_fine(tmp_path):
    (tmp_path / "subs").mkdir()
    proc = grade(str(tmp_path / "subs"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0 and "0 graded, 0 error" in proc.stdout
    assert json.loads((tmp_path / "out" / "gradebook.json").read_text())["complete"] is True
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "canvas.csv", "executed", "feedback", "gradebook.csv", "gradebook.json", "results", "summary.html"]


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX only")
def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    subs = _small_class(tmp_path, n=4)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "graders", "grade", "--lab", str(MECH), str(subs),
                             "--out", str(out), "--workers", "1", "--fresh-kernels"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not kernels_of(out):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert (out / "gradebook.csv").exists()
    time.sleep(0.5)
    assert kernels_of(out) == []


def test_live_mode_grades_reachable_clusters_and_reports_unreachable_ones(tmp_path, fake_api):
    from fakeapi import write_kubeconfig_for

    subs = tmp_path / "subs"
    (subs / "live-ok").mkdir(parents=True)  # an empty folder; live-down is only in the roster:
    # in live mode the cluster is the submission
    up = fake_api.write_kubeconfig(tmp_path / "up.kubeconfig")
    down = write_kubeconfig_for(tmp_path / "down.kubeconfig", {"kind-istio-lab": "https://127.0.0.1:9"})
    roster = tmp_path / "roster.csv"
    roster.write_text(f"id,name,kubeconfig,context\nlive-ok,Ok,{up},kind-istio-lab\n"
                      f"live-down,Down,{down},kind-istio-lab\n")
    out = tmp_path / "out"
    proc = grade(str(subs), "--out", str(out), "--roster", str(roster), "--mode", "live", "--workers", "2",
                 "--timeout", "90", notebook=MECH)
    rows = read_gradebook_json(out)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert rows["live-ok"]["status"] == "graded" and rows["live-ok"]["mode"] == "live", rows["live-ok"]["reason"]
    assert rows["live-down"]["status"] == "error" and "127.0.0.1:9" in rows["live-down"]["reason"]
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    assert fake_api.requests and not writes & {r.verb for r in fake_api.requests}  # grading never writes
    again = grade(str(subs), "--out", str(out), "--roster", str(roster), "--mode", "live", "--workers", "2",
                  notebook=MECH)
    assert "(2 run now, 0 unchanged and kept)" in again.stdout  # a live cluster has no hash: always re-read
