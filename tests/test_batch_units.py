"""Batch grading building blocks without kernels: ids, zips, roster, parameter injection, result
harvesting, gradebooks, feedback, summary, progress and atomic writes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile

import nbformat
import pytest
from batch_fixtures import FIXTURE_NOTEBOOK, REPO, RESULT_MIME, zip_of

from graders.batch import inputs
from graders.batch.feedback import feedback_html
from graders.batch.gradebook import canvas_csv, cell, gradebook_csv, gradebook_json
from graders.batch.inputs import RosterEntry, SubmissionError, display_id, result_stem, unsafe_id_reason
from graders.batch.nbparams import (
    NotebookProblem,
    clear_outputs,
    compare_results,
    harvest,
    inject_parameters,
    parameters_source,
    read_notebook,
    validate_result,
)
from graders.batch.progress import Progress
from graders.batch.store import Store, atomic_write
from graders.batch.summary import summary_html
from graders.errors import InputError


# --- ids -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("learner", ["alice", "a.b-c_d", "jdoe@uni.edu", "Zoë", "42"])
def test_safe_ids(learner):
    assert unsafe_id_reason(learner) is None and result_stem(learner) == learner


@pytest.mark.parametrize(("learner", "why"), [
    ("", "empty"), ("../x", "path separator"), ("a/b", "path separator"), ("a\\b", "path separator"),
    ("..", "path separator"), (".hidden", "start with a letter"), ("-rf", "start with a letter"),
    ("=cmd()", "start with a letter"), ("bell\x07", "control"), ("tab\there", "control"),
    ("has space", "space"), ("x" * 65, "65 characters"), ("a;b", "may only hold"),
])
def test_unsafe_ids_are_refused_with_a_reason(learner, why):
    reason = unsafe_id_reason(learner)
    assert reason and why in reason
    stem = result_stem(learner)
    assert stem.startswith("_unsafe-") and "/" not in stem and unsafe_id_reason(stem[1:]) is None


def test_display_id_escapes_and_bounds():
    assert display_id("bad\x07id") == "bad\\x07id"
    assert display_id("rtl\u202eid") == "rtl\\u202eid" and display_id("a\\x07") == "a\\\\x07"
    assert display_id("s\udcffx") == "s\\udcffx"  # an undecodable file name byte (surrogateescape)
    assert display_id("zoë") == "zoë" and display_id("Ñandú_李") == "Ñandú_李"  # letters of any script stay
    assert len(display_id("é" * 200)) <= 80


def test_unsafe_stems_differ_per_id():
    assert result_stem("../a") != result_stem("../b")


# --- discovery -----------------------------------------------------------------------------------
def test_discover_folders_zips_roster_and_conflicts(tmp_path):
    subs = tmp_path / "subs"
    for name in ("alice", "bob", ".git", "__MACOSX"):
        (subs / name).mkdir(parents=True)
    (subs / "carol.zip").write_bytes(zip_of({"snapshot.yaml": b"kind: List\n"}))
    (subs / "bob.zip").write_bytes(zip_of({"snapshot.yaml": b"kind: List\n"}))
    (subs / "README.txt").write_text("not a learner")
    (subs / "linked").symlink_to(subs / "alice")
    roster = {"alice": RosterEntry("alice", name="Alice"), "dave": RosterEntry("dave")}
    found = inputs.discover(subs, roster)
    by_id = {s.learner: s for s in found.submissions}
    assert sorted(by_id) == ["alice", "bob", "carol", "dave", "linked"]
    assert by_id["alice"].problem is None and by_id["alice"].roster.name == "Alice"
    assert "both a folder and a zip" in by_id["bob"].problem
    assert by_id["carol"].is_zip and by_id["carol"].problem is None
    assert "no submission found" in by_id["dave"].problem
    assert "symbolic link" in by_id["linked"].problem
    assert found.ignored == ["README.txt"]


def test_symlink_inside_a_submission_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "snapshot.yaml").symlink_to("/etc/hostname")
    with pytest.raises(SubmissionError, match="symbolic link"):
        inputs.list_files(tmp_path / "a")


def test_content_hash_changes_with_any_input(tmp_path):
    folder = tmp_path / "alice"
    (folder / "manifests").mkdir(parents=True)
    (folder / "manifests" / "a.yaml").write_text("kind: List\n")
    sub = inputs.Submission("alice", folder)
    h1 = inputs.content_hash(sub, "lab-v1")
    assert inputs.content_hash(sub, "lab-v1") == h1
    assert inputs.content_hash(sub, "lab-v2") != h1
    (folder / "manifests" / "a.yaml").write_text("kind: List\nitems: []\n")
    h2 = inputs.content_hash(sub, "lab-v1")
    assert h2 != h1
    (folder / "manifests" / "a.yaml").rename(folder / "manifests" / "b.yaml")
    assert inputs.content_hash(sub, "lab-v1") != h2


# --- zips ----------------------------------------------------------------------------------------
def test_zip_wrapped_in_one_folder_is_unwrapped(tmp_path):
    z = tmp_path / "a.zip"
    z.write_bytes(zip_of({"alice/manifests/g.yaml": b"kind: Gateway\n", "__MACOSX/._x": b"junk"}))
    root = inputs.unpack_zip(z, tmp_path / "out")
    assert root == tmp_path / "out" / "alice" and (root / "manifests" / "g.yaml").read_text() == "kind: Gateway\n"


@pytest.mark.parametrize("top", ["work/", "labs/lab01/work/"])
def test_zip_of_the_work_folder_is_not_unwrapped(tmp_path, top):
    """Zipping the work folder, as the lab notebook says to hand it in, gives ``work/...`` or
    ``labs/lab01/work/...``: that single top folder is the layout, not an LMS wrapper to descend into."""
    z = tmp_path / "a.zip"
    z.write_bytes(zip_of({top + "g.yaml": b"kind: Gateway\n"}))
    root = inputs.unpack_zip(z, tmp_path / "out")
    assert inputs.manifests_dir(root, "lab01") == root / top.rstrip("/")
    wrapped = tmp_path / "b.zip"
    wrapped.write_bytes(zip_of({"alice_123/" + top + "g.yaml": b"kind: Gateway\n"}))
    root = inputs.unpack_zip(wrapped, tmp_path / "out2")
    assert inputs.manifests_dir(root, "lab01") == root / top.rstrip("/")


@pytest.mark.parametrize(("entries", "symlink", "why"), [
    ({"../evil.txt": b"x"}, None, "points outside"),
    ({"a/../../evil.txt": b"x"}, None, "points outside"),
    ({"/etc/evil": b"x"}, None, "points outside"),
    ({"C:/evil": b"x"}, None, "points outside"),
    ({"ok.yaml": b"x"}, "link.yaml", "symbolic link"),
    ({"big.yaml": b"\0" * (17 * 2**20)}, None, "zip bomb"),
    ({"dense.yaml": b"a" * (3 * 2**20)}, None, "zip bomb"),  # ~3 MiB from a few KiB: ratio over 200
])
def test_hostile_zips_are_refused_before_anything_is_written(tmp_path, entries, symlink, why):
    z = tmp_path / "a.zip"
    z.write_bytes(zip_of(entries, symlink=symlink))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SubmissionError, match=why):
        inputs.unpack_zip(z, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_zip_whose_header_lies_about_its_size_is_stopped_while_writing(tmp_path):
    z = tmp_path / "liar.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.yaml", b"b" * 5000)
    raw = bytearray(z.read_bytes())
    # Shrink the declared uncompressed size in the central directory (offset 24 of the entry header).
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    z.write_bytes(bytes(raw))
    with pytest.raises(SubmissionError):
        inputs.unpack_zip(z, tmp_path / "out")


def test_corrupt_and_encrypted_zips(tmp_path):
    z = tmp_path / "c.zip"
    z.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(SubmissionError, match="not a readable zip"):
        inputs.unpack_zip(z, tmp_path / "o1")
    raw = bytearray(zip_of({"s.yaml": b"x"}))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # mark the entry encrypted in both headers
        at = raw.find(sig) + flag_at
        raw[at] |= 0x1
    z.write_bytes(bytes(raw))
    with pytest.raises(SubmissionError, match="encrypted"):
        inputs.unpack_zip(z, tmp_path / "o2")


# --- roster --------------------------------------------------------------------------------------
def test_roster_reads_columns_and_resolves_kubeconfig(tmp_path):
    r = tmp_path / "roster.csv"
    r.write_text("\ufeffID,Name,Email,Kubeconfig,Context\nalice,\"Doe, Alice\",a@x.edu,kc/alice.yaml,kind-a\n\n")
    roster = inputs.read_roster(str(r))
    assert roster["alice"].name == "Doe, Alice" and roster["alice"].context == "kind-a"
    assert roster["alice"].kubeconfig == str((tmp_path / "kc" / "alice.yaml").resolve())


@pytest.mark.parametrize(("text", "why"), [
    ("name,email\nA,a@x\n", "no 'id' column"),
    ("id,name\na,A\na,B\n", "appears twice"),
])
def test_bad_rosters_are_one_line_input_errors(tmp_path, text, why):
    r = tmp_path / "roster.csv"
    r.write_text(text)
    with pytest.raises(InputError, match=why):
        inputs.read_roster(str(r))


# --- notebooks -----------------------------------------------------------------------------------
def _nb() -> nbformat.NotebookNode:
    return read_notebook(FIXTURE_NOTEBOOK.read_text(), "fixture")


def test_parameters_are_injected_right_after_the_parameters_cell():
    nb = _nb()
    out, at = inject_parameters(nb, {"SNAPSHOT": "/x/it's \"odd\"\n.yaml", "MANIFESTS": ["/a", "/b"]})
    assert "parameters" in out.cells[at - 1].metadata["tags"]
    assert out.cells[at].metadata["tags"] == ["injected-parameters"]
    ns: dict = {}
    exec(out.cells[at].source, ns)
    assert ns["SNAPSHOT"] == "/x/it's \"odd\"\n.yaml" and ns["MANIFESTS"] == ["/a", "/b"] and ns["CONTEXT"] is None
    assert len(nb.cells) == len(out.cells) - 1  # the original is untouched
    again, _ = inject_parameters(out, {})
    assert sum("injected-parameters" in (c.metadata.get("tags") or []) for c in again.cells) == 1


def test_parameters_refuse_anything_but_strings():
    with pytest.raises(TypeError):
        parameters_source({"SNAPSHOT": object()})


def test_notebook_without_parameters_cell_gets_them_on_top():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    out, at = inject_parameters(nb, {})
    assert at == 0 and out.cells[0].metadata["tags"] == ["injected-parameters"]


def _result(lab="lab99", score=3, checks=None):
    checks = checks if checks is not None else [
        {"id": "a", "title": "A", "points": 1, "passed": True, "message": "ok", "hint": None},
        {"id": "b", "title": "B", "points": 2, "passed": True, "message": "ok", "hint": None}]
    return {"lab": lab, "mode": "simulated", "score": score, "max_score": 3, "checks": checks}


def _with_output(nb, payload):
    nb.cells[-1].outputs = [nbformat.v4.new_output("display_data", data={RESULT_MIME: payload})]
    return nb


def test_harvest_takes_the_last_result_and_recomputes_totals():
    nb = _with_output(_nb(), _result())
    assert harvest(nb, "lab99")["score"] == 3
    with pytest.raises(NotebookProblem, match="does not add up"):
        harvest(_with_output(_nb(), _result(score=99)), "lab99")
    with pytest.raises(NotebookProblem, match="not 'lab99'"):
        harvest(_with_output(_nb(), _result(lab="lab01")), "lab99")
    with pytest.raises(NotebookProblem, match="no checks"):
        harvest(_with_output(_nb(), _result(checks=[])), "lab99")


def _lab01(**change):
    """lab01's real result for its reference solution, with ``change`` applied to one check."""
    from graders.labs import run

    result = run("lab01", paths=[str(REPO / "labs" / "lab01" / "solutions" / "reference")]).to_json()
    if change:
        which = change.pop("check")
        target = next(c for c in result["checks"] if c["id"] == which)
        target.update(change)
        result["score"] = sum(c["points"] for c in result["checks"] if c["passed"])
        result["max_score"] = sum(c["points"] for c in result["checks"] if c.get("status") != "not-evaluated")
    return result


@pytest.mark.parametrize(("payload", "why"), [
    ({"check": "gateway-exists", "id": "pwned"}, "'pwned' is not a check of this lab"),
    ({"check": "gateway-exists", "points": 1000}, "claims title"),
    ({"check": "gateway-exists", "title": "Free points"}, "claims title"),
    ({"check": "gateway-exists", "status": "failed"}, "has status 'failed' with passed=True"),
    ({"check": "gateway-exists", "status": "pwned"}, "has status 'pwned'"),
    ({"check": "gateway-exists", "passed": False, "status": "blocked"}, "is blocked although"),
    # a check passed while a check it needs failed cannot come from the lab's own evaluation
    ({"check": "istio-bookinfo-ready", "passed": False, "status": "failed"}, "although the checks it needs"),
    ({"check": "gateway-exists", "points": float("nan")}, "a number, 0 or more"),
    ({"check": "gateway-exists", "points": -5}, "a number, 0 or more"),
])
def test_results_are_validated_against_the_lab_definition(payload, why):
    from graders.batch.run import lab_definition

    definition = lab_definition("lab01")
    assert validate_result(_lab01(), "lab01", definition)["score"] == 15
    with pytest.raises(NotebookProblem, match=re.escape(why)):
        validate_result(_lab01(**payload), "lab01", definition)


def test_a_result_missing_or_repeating_checks_is_refused():
    from graders.batch.run import lab_definition

    definition = lab_definition("lab01")
    short = _lab01()
    short["checks"] = short["checks"][1:]
    short["score"] = short["max_score"] = 14
    with pytest.raises(NotebookProblem, match="'istio-bookinfo-ready' is missing"):
        validate_result(short, "lab01", definition)
    twice = _lab01()
    twice["checks"] = [twice["checks"][0], *twice["checks"]]
    twice["score"] = twice["max_score"] = 16
    with pytest.raises(NotebookProblem, match="repeated or out of order"):
        validate_result(twice, "lab01", definition)


def test_not_evaluated_checks_count_in_neither_total():
    payload = _result(checks=[
        {"id": "a", "title": "A", "points": 1, "passed": True, "status": "passed", "message": "", "hint": None},
        {"id": "b", "title": "B", "points": 2, "passed": False, "status": "not-evaluated", "message": "",
         "hint": None}])
    payload.update(score=1, max_score=1)
    assert validate_result(payload, "lab99")["max_score"] == 1


def test_a_claimed_result_must_match_the_course_grading_check_by_check():
    from graders.batch.run import lab_definition

    definition = lab_definition("lab01")
    good = validate_result(_lab01(), "lab01", definition)
    assert compare_results(good, good) is None
    worse = validate_result(_lab01(check="request-productpage", passed=False, status="failed"), "lab01", definition)
    why = compare_results(good, worse)
    lost = next(c["points"] for c in good["checks"] if c["id"] == "request-productpage")
    assert why and f"claims 15/15, the files score {15 - lost}/15" in why and "'request-productpage'" in why


def test_cleared_outputs_leave_nothing_to_harvest():
    nb = _with_output(_nb(), _result())
    with pytest.raises(NotebookProblem, match="displayed no lab result"):
        harvest(clear_outputs(nb), "lab99")


def test_a_lab_that_could_not_grade_says_why_in_its_error_output():
    from graders.errors import InputError
    from graders.notebook import error_bundle

    nb = _nb()
    bundle = error_bundle(InputError("snapshot.yaml:3:1: YAML syntax error: found unexpected end of stream"), "lab99")
    nb.cells[-1].outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    with pytest.raises(NotebookProblem) as err:
        harvest(nb, "lab99")
    assert str(err.value) == "could not grade: snapshot.yaml:3:1: YAML syntax error: found unexpected end of stream"


def test_missing_result_reports_what_the_notebook_said_last():
    nb = _nb()
    nb.cells[-1].outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": "<div>&#10060; <strong>Could not grade.</strong> snapshot.yaml:3: YAML syntax error</div>"})]
    with pytest.raises(NotebookProblem, match=r"it said: ❌ Could not grade\. snapshot\.yaml:3: YAML syntax error"):
        harvest(nb, "lab99")


@pytest.mark.parametrize(("text", "why"), [
    ('{"cells": [', "not valid notebook JSON"),
    ("[1, 2]", "not a readable Jupyter notebook"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": 5, '
     '"metadata": {}, "outputs": []}]}', "source is not text"),
])
def test_malformed_notebooks(text, why):
    with pytest.raises(NotebookProblem, match=why):
        read_notebook(text, "nb.ipynb")


# --- outputs -------------------------------------------------------------------------------------
ROWS = [
    {"learner": "bob", "name": "Bob", "lab": "lab99", "status": "graded", "score": 1, "max_score": 3,
     "mode": "manifests", "reason": "", "unsafe_id": False,
     "checks": [{"id": "a", "title": "A <b>", "points": 1, "passed": True, "message": "m", "hint": None},
                {"id": "b", "title": "B", "points": 2, "passed": False, "message": "<script>x</script>",
                 "hint": "look at <spec.hosts> & more"}]},
    {"learner": "alice", "name": "", "lab": "lab99", "status": "error", "score": None, "max_score": None,
     "mode": "", "reason": "=HYPERLINK(\"http://evil\")", "unsafe_id": False, "checks": []},
    {"learner": "../x", "name": "", "lab": "lab99", "status": "error", "score": None, "max_score": None,
     "mode": "", "reason": "unsafe", "unsafe_id": True, "checks": []},
]


def test_gradebook_csv_is_sorted_with_check_columns_and_no_formulas():
    rows = list(csv.reader(io.StringIO(gradebook_csv(ROWS, "lab99"))))
    assert rows[0] == ["learner", "lab", "status", "score", "max_score", "a", "b", "reason"]
    assert [r[0] for r in rows[1:]] == ["../x", "alice", "bob"]
    assert rows[3][2:7] == ["graded", "1", "3", "1", "0"]
    assert rows[2][-1].startswith("'=HYPERLINK")


@pytest.mark.parametrize(("value", "out"), [("=1+1", "'=1+1"), ("@SUM(A1)", "'@SUM(A1)"), ("-5", "-5"),
                                            ("+x", "'+x"), ("plain", "plain"), (None, "")])
def test_csv_cells_never_start_a_formula(value, out):
    assert cell(value) == out


def test_gradebook_json_counts_and_pending():
    doc = json.loads(gradebook_json(ROWS, "lab99", "Fixture", ["carol"]))
    assert doc["counts"] == {"graded": 1, "error": 2, "pending": 1} and doc["complete"] is False
    assert [r["learner"] for r in doc["learners"]] == ["../x", "alice", "bob"]


def test_canvas_csv_format():
    roster = {"bob": RosterEntry("bob", name="Doe, Bob", canvas_id="123", sis_user_id="S1", sis_login_id="bdoe",
                                 section="S01")}
    rows = list(csv.reader(io.StringIO(canvas_csv(ROWS, roster, "Fixture lab", "4567"))))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Fixture lab (4567)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "3"]
    assert rows[2] == ["alice", "", "", "alice", "", ""]  # error: blank score, Canvas keeps what it has
    assert rows[3] == ["Doe, Bob", "123", "S1", "bdoe", "S01", "1"]
    assert len(rows) == 4  # the unsafe id is left out


def test_feedback_escapes_everything_and_shows_only_public_fields():
    page = feedback_html(ROWS[0], "Fixture <lab>")
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "Hint: look at &lt;spec.hosts&gt; &amp; more" in page and "A &lt;b&gt;" in page
    assert "Fixture &lt;lab&gt; (lab99)" in page and "Score: 1 / 3" in page
    err = feedback_html(ROWS[1], "Fixture")
    assert "could not be graded" in err and "=HYPERLINK(&quot;http://evil&quot;)" in err


def test_summary_has_two_embedded_plots_and_error_table():
    page = summary_html(ROWS, "lab99", "Fixture", [])
    assert page.count("data:image/svg+xml;base64,") == 2 and "<script" not in page
    assert "../x" in page and "&lt;" not in page.split("<h1>")[0]
    assert "1 graded, 2 in error." in page
    assert "<td>a</td><td>1 of 1</td>" in page and "<td>b</td><td>0 of 1</td>" in page
    assert "not graded yet" in summary_html(ROWS, "lab99", "Fixture", ["carol"])


def test_summary_without_graded_rows_has_no_plots():
    assert "data:image" not in summary_html(ROWS[1:], "lab99", "Fixture", [])


# --- progress ------------------------------------------------------------------------------------
def test_plain_progress_prints_one_line_per_learner():
    buf = io.StringIO()
    p = Progress(2, buf, tty=False)
    p.update({**ROWS[0], "seconds": 1.25})
    p.update(ROWS[1], skipped=True)
    assert buf.getvalue().splitlines() == ["[1/2] bob: graded 1/3 (1.2 s)",
                                           "[2/2] alice: error: =HYPERLINK(\"http://evil\") (unchanged, kept)"]


def test_tty_progress_redraws_one_bar_with_eta():
    buf = io.StringIO()
    p = Progress(2, buf, tty=True)
    p.update({**ROWS[0], "seconds": 1.0})
    assert buf.getvalue().startswith("\r[###############...............] 1/2") and "ETA 0:0" in buf.getvalue()
    p.update(ROWS[1])
    assert buf.getvalue().endswith("\n") and buf.getvalue().count("\n") == 1


# --- store ---------------------------------------------------------------------------------------
def test_atomic_write_replaces_whole_files_and_leaves_no_temp(tmp_path):
    target = tmp_path / "r" / "a.json"
    atomic_write(target, "one")
    atomic_write(target, "two")
    assert target.read_text() == "two" and os.listdir(target.parent) == ["a.json"]


def test_store_ignores_unreadable_results_and_removes_stale_temp_files(tmp_path):
    store = Store(tmp_path)
    store.prepare()
    (store.results / "bad.json").write_text("{half")
    (store.results / ".x.json.123.tmp").write_text("partial")
    assert store.load("bad") is None and store.load("missing") is None
    store.prepare()
    assert not list(store.results.glob("*.tmp"))
    store.save("ok", {"learner": "ok"}, "<html>", None)
    assert store.load("ok")["learner"] == "ok" and (store.feedback / "ok.html").exists()


def test_one_run_per_out_dir(tmp_path):
    a, b = Store(tmp_path), Store(tmp_path)
    with a.lock(), pytest.raises(InputError, match="another `grade` run"), b.lock():
        pass
    with b.lock():
        pass
    assert not (tmp_path / ".lock").exists()  # a finished run leaves no lock file behind


def test_stored_files_are_shared_with_umask_permissions_and_never_replace_special_files(tmp_path):
    import stat

    from graders import outfile

    old = os.umask(0o022)
    outfile.file_mode.cache_clear()
    try:
        store = Store(tmp_path)
        store.prepare()
        store.save("ok", {"learner": "ok"}, "<html>", "{}")
        atomic_write(tmp_path / "gradebook.csv", "learner\n")
        for f in (store.result_path("ok"), store.feedback / "ok.html", store.executed / "ok.ipynb",
                  tmp_path / "gradebook.csv"):
            assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
    finally:
        os.umask(old)
        outfile.file_mode.cache_clear()
    os.mkfifo(tmp_path / "summary.html")
    (tmp_path / "canvas.csv").symlink_to(tmp_path / "gradebook.csv")
    for name in ("summary.html", "canvas.csv"):
        with pytest.raises(InputError, match=r"is a (FIFO|symbolic link)"):
            atomic_write(tmp_path / name, "x")
    assert (tmp_path / "gradebook.csv").read_text() == "learner\n"
    assert stat.S_ISFIFO((tmp_path / "summary.html").lstat().st_mode)


def test_lab_notebook_must_have_a_parameters_cell(tmp_path):
    from graders.batch.run import resolve_lab

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "lab42-x.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(InputError, match="no code cell tagged 'parameters'"):
        resolve_lab(str(path))
    lab = resolve_lab(str(FIXTURE_NOTEBOOK))
    assert lab.id == "lab99" and lab.title == "Batch-grading fixture"



def test_roster_row_alone_is_a_submission_in_live_mode(tmp_path):
    (tmp_path / "subs").mkdir()
    roster = {"ann": RosterEntry("ann", kubeconfig="/k", context="c")}
    (sub,) = inputs.discover(tmp_path / "subs", roster, live=True).submissions
    assert sub.problem is None and sub.path is None
    (sub,) = inputs.discover(tmp_path / "subs", roster).submissions
    assert "no submission found" in sub.problem


@pytest.mark.parametrize("where", ["manifests", "labs/lab01/work", "work"])
def test_learner_yaml_is_found_where_the_lab_has_it_written(tmp_path, where):
    (tmp_path / where).mkdir(parents=True)
    assert inputs.manifests_dir(tmp_path, "lab01") is None  # empty folders hold nothing to grade
    (tmp_path / where / "gw.yaml").write_text("kind: Gateway\n")
    assert inputs.manifests_dir(tmp_path, "lab01") == tmp_path / where


def test_feedback_marks_skipped_checks_apart_from_failed_ones():
    row = {**ROWS[0], "checks": [*ROWS[0]["checks"], {"id": "c", "title": "C", "points": 1, "passed": False,
                                                      "message": "skipped: needs “B” first", "hint": None}]}
    page = feedback_html(row, "Fixture")
    assert page.count("not yet</span>") == 1 and page.count("skipped</span>") == 1


# --- the worker pool -----------------------------------------------------------------------------
def _pool_target(started, conn) -> None:
    """A worker that notes its pid in ``started``, 'grades' item n by sleeping a little and reporting
    its pid; item 2 kills it."""
    import asyncio
    import signal
    from pathlib import Path

    from graders.batch import pool

    (Path(started) / str(os.getpid())).touch()

    async def handle(item: int, slot) -> tuple[int, int]:
        if item == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        await asyncio.sleep(0.2)
        return item, os.getpid()

    pool.work(conn, handle, True)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_worker_that_dies_costs_its_item_and_is_replaced(start_method, monkeypatch, tmp_path):
    """fork when the grader is a plain command; spawn when it runs among other threads (a notebook)."""
    import multiprocessing

    from graders.batch import pool

    monkeypatch.setattr(pool, "_context", lambda: multiprocessing.get_context(start_method))

    results, lost = [], []
    starts = pool.serve(range(7), 2, _pool_target, (str(tmp_path),), results.append,
                        lambda item, why: lost.append((item, why)))
    assert lost == [(2, "the grading worker process was killed by SIGKILL (out of memory?) while grading this learner")]
    assert sorted(item for item, _ in results) == [0, 1, 3, 4, 5, 6]
    # Two workers, then a replacement for the one that died (items 3-6 were still queued when it died;
    # the survivor may have graded them all before the replacement, a slower spawn, asked for one).
    assert len(list(tmp_path.iterdir())) == 3
    assert {pid for _, pid in results} <= {int(p.name) for p in tmp_path.iterdir()}
    assert starts == 0  # no kernel was needed by this handler


def _failing_target(conn) -> None:
    from graders.batch import pool

    async def handle(item: int, slot) -> int:
        raise ValueError(f"bug on item {item}")

    pool.work(conn, handle, True)


def test_a_bug_in_a_worker_is_reported_once_not_per_item():
    from graders.batch import pool

    with pytest.raises(pool.WorkerFailed, match="a grading worker failed: ValueError: bug on item 0; the results"):
        pool.serve(range(3), 1, _failing_target, (), lambda r: None, lambda i, w: None)


def _exiting_target(conn) -> None:
    os._exit(3)  # e.g. a worker that cannot import what it needs


def test_a_worker_that_cannot_start_stops_the_run_with_one_line():
    from graders.batch import pool

    with pytest.raises(pool.WorkerFailed, match=r"^grading stopped: the grading worker process exited \(code 3\) "
                                                r"before it could grade anything; the results so far are kept"):
        pool.serve(range(3), 2, _exiting_target, (), lambda r: None, lambda i, w: None)


def test_ids_that_differ_only_by_case_are_both_refused(tmp_path):
    subs = tmp_path / "subs"
    for name in ("Alice", "alice", "bob", "Zo\u00eb", "carol"):
        (subs / name).mkdir(parents=True)
    roster = {"BOB": RosterEntry("BOB"), "ZO\u00cb": RosterEntry("ZO\u00cb")}
    by_id = {s.learner: s for s in inputs.discover(subs, roster).submissions}
    for learner in ("Alice", "alice", "bob", "BOB", "Zo\u00eb", "ZO\u00cb"):
        assert by_id[learner].problem and "differ only by case" in by_id[learner].problem, learner
    assert "'Alice', 'alice'" in by_id["alice"].problem
    assert by_id["carol"].problem is None
