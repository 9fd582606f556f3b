"""The lab check framework: ordering, prerequisites, JSON shape, lab ids, renderers."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from graders.checks import Context, Lab, failed, needs_live, passed
from graders.commands.check import render_junit, render_text
from graders.errors import InputError
from graders.labs import normalize_id
from graders.state import State


def _toy_lab(calls: list[str]) -> Lab:
    lab = Lab("lab99", "Toy lab", chapter="chapters/x", notebook="labs/x.ipynb")

    @lab.check("has-gateway", "A Gateway exists", points=1)
    def has_gateway(ctx: Context):
        calls.append("has-gateway")
        if ctx.state.gateways:
            return passed("Found a Gateway.")
        return failed("No Gateway found.", "Look for kind: Gateway in your files.", "Write one in work/.")

    @lab.check("gateway-named", "The Gateway is named right", points=2, needs=("has-gateway",))
    def gateway_named(ctx: Context):
        calls.append("gateway-named")
        return passed("Named right.")

    @lab.check("independent", "An independent check", points=3)
    def independent(ctx: Context):
        calls.append("independent")
        return passed("Always fine.")

    return lab


def test_failed_prerequisite_skips_dependent_check_without_running_it():
    calls: list[str] = []
    result = _toy_lab(calls).evaluate(Context(State(mode="simulated", description="empty")))
    assert calls == ["has-gateway", "independent"]
    skipped = result.check("gateway-named")
    assert not skipped.passed and skipped.skipped
    assert skipped.message == "skipped: needs “A Gateway exists” first."
    assert skipped.hint is None
    assert result.check("has-gateway").hint == "Look for kind: Gateway in your files."
    assert (result.score, result.max_score) == (3, 6)


def test_json_shape_is_the_documented_contract():
    result = _toy_lab([]).evaluate(Context(State(mode="simulated")))
    data = result.to_json()
    assert list(data) == ["lab", "mode", "score", "max_score", "not_evaluated_points", "checks"]
    assert data["not_evaluated_points"] == 0
    assert data["lab"] == "lab99" and data["mode"] == "simulated"
    assert [c["id"] for c in data["checks"]] == ["has-gateway", "gateway-named", "independent"]
    for c in data["checks"]:
        assert list(c) == ["id", "title", "points", "passed", "status", "message", "hint"]
    assert data["checks"][2]["hint"] is None  # passed checks carry no hint


def test_only_runs_prerequisites_but_reports_just_the_asked_check():
    calls: list[str] = []
    result = _toy_lab(calls).evaluate(Context(State(mode="simulated")), only=["gateway-named"])
    assert [c.id for c in result.checks] == ["gateway-named"]
    assert calls == ["has-gateway"]
    assert result.checks[0].skipped and result.checks[0].status == "blocked"


def test_registration_rejects_duplicates_and_unknown_prerequisites():
    lab = Lab("lab98", "x", chapter="c", notebook="n")
    lab.check("a", "A")(lambda ctx: passed("ok"))
    with pytest.raises(ValueError, match="duplicate"):
        lab.check("a", "A again")
    with pytest.raises(ValueError, match="declared before"):
        lab.check("b", "B", needs=("zzz",))


@pytest.mark.parametrize("given", ["lab01", "01", "1", "Lab1", " LAB01 "])
def test_lab_ids_accept_the_usual_spellings(given):
    assert normalize_id(given) == "lab01"


@pytest.mark.parametrize("given", ["", "lab", "one", "lab-1", "123"])
def test_bad_lab_ids_are_input_errors(given):
    with pytest.raises(InputError, match="not a lab"):
        normalize_id(given)


def test_text_report_has_marks_hints_and_score_without_colour():
    result = _toy_lab([]).evaluate(Context(State(mode="simulated", description="simulated lab cluster")))
    text = render_text(result, color=False)
    assert "\033[" not in text
    assert "❌ A Gateway exists" in text and "✅ An independent check" in text
    assert "💡 hint: Look for kind: Gateway in your files." in text
    assert "💡 still stuck? Write one in work/." in text
    assert "score 3/6" in text
    assert "\033[" in render_text(result, color=True)


def test_junit_has_one_testcase_per_check_and_failures_with_hints():
    result = _toy_lab([]).evaluate(Context(State(mode="simulated")))
    suite = ET.fromstring(render_junit(result).split("?>", 1)[1])
    cases = suite.findall("testcase")
    assert [c.get("name").split(":")[0] for c in cases] == ["has-gateway", "gateway-named", "independent"]
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    fail = cases[0].find("failure")
    assert fail.get("message") == "No Gateway found." and "hint: Look for kind: Gateway" in fail.text
    assert cases[1].find("failure") is None and cases[1].find("skipped").get("type") == "blocked"
    assert cases[1].get("status") == "blocked"
    assert cases[2].find("failure") is None and cases[2].find("skipped") is None


# --- the check command --------------------------------------------------------------------------------
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
REFERENCE = str(REPO / "labs" / "lab01" / "solutions" / "reference")
WRONG = str(REPO / "labs" / "lab01" / "wrong" / "helm-selector")


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from graders.cli import main

    code = main(["check", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_command_exit_codes_and_simulated_report(capsys):
    code, out, err = _cli(capsys, "lab01", REFERENCE)
    assert (code, err) == (0, "")
    assert "simulated" in out.lower() and "no real request sent" in out and "score 15/15" in out
    assert "\033[" not in out  # not a TTY: no colour
    code, out, _ = _cli(capsys, "1", WRONG)
    assert code == 1 and "❌ The Gateway selects the ingress gateway pods" in out and "💡 hint:" in out


@pytest.mark.parametrize(("args", "says"), [
    (("lab09",), "lab09 has no checks yet"),
    (("first",), "is not a lab"),
    (("lab01", "/no/such/dir"), "no such file or directory"),
    (("lab01", "--snapshot", "s.yaml", "--context", "kind-istio-lab"), "not both"),
])
def test_check_command_bad_input_is_one_line_and_exit_2(capsys, args, says):
    code, out, err = _cli(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and says in err


def test_check_command_json_and_junit(capsys):
    code, out, _ = _cli(capsys, "01", WRONG, "-o", "json")
    data = json.loads(out)
    assert code == 1 and data["lab"] == "lab01" and data["mode"] == "simulated"
    assert data["checks"][2] == {**data["checks"][2], "id": "gateway-selects-pods", "passed": False}
    code, out, _ = _cli(capsys, "01", WRONG, "-o", "junit")
    suite = ET.fromstring(out.split("?>", 1)[1])
    assert code == 1 and len(suite.findall("testcase")) == len(data["checks"])
    assert suite.get("failures") == str(sum(c["status"] == "failed" for c in data["checks"]))
    assert suite.get("skipped") == str(sum(c["status"] == "blocked" for c in data["checks"])) != "0"


def test_options_may_come_between_lab_and_paths(capsys):
    code, out, _ = _cli(capsys, "lab01", "--no-baseline", REFERENCE, "-o", "json")
    assert json.loads(out)["mode"] == "manifests" and code == 1
    code, out, _ = _cli(capsys, "lab01", "--no-baseline", REFERENCE)
    assert "Only your files are graded (--no-baseline)" in out


def test_no_path_grades_the_work_folder_and_says_so(capsys):
    code, out, _ = _cli(capsys, "lab01")
    assert code in (0, 1) and "labs/lab01/work/" in out and "Simulated lab cluster" in out


def test_notebook_session_regrades_only_when_an_input_file_changes(tmp_path):
    import os

    from graders.notebook import LabSession

    work = tmp_path / "mine.yaml"
    work.write_text((REPO / "labs" / "lab01" / "wrong" / "helm-selector" / "bookinfo-gateway.yaml").read_text())
    lab = LabSession("lab01", MANIFESTS=[str(work)])
    first = lab.result()
    assert lab.result() is first and not first.all_passed
    work.write_text((REPO / "labs" / "lab01" / "solutions" / "reference" / "bookinfo-gateway.yaml").read_text())
    os.utime(work, ns=(first_ns := work.stat().st_mtime_ns + 10**9, first_ns))
    assert lab.result().all_passed


def test_text_report_falls_back_to_ascii_marks_on_a_narrow_terminal():
    from graders.commands.check import printable

    result = _toy_lab([]).evaluate(Context(State(mode="simulated")))
    text = printable(render_text(result), "latin-1")
    text.encode("latin-1")
    assert "[FAIL] A Gateway exists" in text and "[ok] An independent check" in text and "* hint:" in text
    assert printable("✅ fine", "utf-8") == "✅ fine"


def test_notebook_shows_bad_input_as_a_panel_without_a_result(tmp_path):
    from graders.notebook import MIME_CHECK, MIME_LAB, LabSession

    bad = tmp_path / "gateway.yaml"
    bad.write_text("kind: Gateway\nmetadata:\n  name: [unclosed\n")
    lab = LabSession("lab01", MANIFESTS=[str(bad)])
    for bundle in (lab._check_bundle("gateway-exists"), lab._lab_bundle()):
        assert MIME_CHECK not in bundle and MIME_LAB not in bundle
        assert bundle["text/plain"].startswith("Could not grade:") and "gateway.yaml:" in bundle["text/plain"]
        assert "YAML syntax error" in bundle["text/html"]
    with pytest.raises(KeyError, match="no check 'nope'"):
        lab.check("nope")


def test_every_lab_links_an_existing_chapter_and_notebook_and_has_unique_check_ids():
    from graders.labs import available, get

    assert available() == [f"lab0{i}" for i in range(1, 8)]
    for lab_id in available():
        lab = get(lab_id)
        assert (REPO / f"{lab.chapter}.md").is_file(), lab.chapter
        assert (REPO / lab.notebook).is_file(), lab.notebook
        assert len({c.id for c in lab.checks}) == len(lab.checks) and all(c.points > 0 for c in lab.checks)


def test_failing_report_points_at_the_chapter(capsys):
    _, out, _ = _cli(capsys, "lab01", WRONG)
    assert out.rstrip().endswith("Stuck? The background is in chapters/02-gateway-resource.md.")
    _, out, _ = _cli(capsys, "lab01", REFERENCE)
    assert "Stuck?" not in out


def test_no_widgets_in_kernels_started_by_batch_grading(monkeypatch):
    from graders import notebook

    monkeypatch.setattr(notebook, "_live_kernel", lambda: True)
    monkeypatch.delenv(notebook.BATCH_ENV, raising=False)
    assert notebook._interactive()
    monkeypatch.setenv(notebook.BATCH_ENV, "/tmp/out")
    assert not notebook._interactive()


# --- a check awards points only on evidence: not-evaluated -------------------------------------------
def _live_lab(calls: list[str]) -> Lab:
    lab = Lab("lab97", "Live toy lab", chapter="chapters/x", notebook="labs/x.ipynb")

    @lab.check("config", "The configuration is right", points=2)
    def config(ctx: Context):
        calls.append("config")
        return passed("Configured.") if ctx.state.gateways else failed("No Gateway.", "Write one.")

    @lab.check("log-line", "The access log shows the request", points=3, needs=("config",), live_only=True)
    def log_line(ctx: Context):
        calls.append("log-line")
        return passed("A log line was found.")

    @lab.check("after-log", "Something built on the log", points=1, needs=("log-line",))
    def after_log(ctx: Context):
        calls.append("after-log")
        return passed("Fine.")

    @lab.check("own-decision", "A check that decides itself", points=4)
    def own_decision(ctx: Context):
        calls.append("own-decision")
        if ctx.state.mode != "live":
            return needs_live("a real request would show whether the page loads.")
        return passed("Loaded.")

    return lab


@pytest.mark.parametrize("mode", ["simulated", "snapshot", "manifests"])
def test_live_only_checks_are_not_evaluated_and_left_out_of_max_score(mode):
    calls: list[str] = []
    result = _live_lab(calls).evaluate(Context(State(mode=mode)))
    assert calls == ["config", "own-decision"]  # a live-only check is never run off-cluster
    statuses = {c.id: c.status for c in result.checks}
    assert statuses == {"config": "failed", "log-line": "not-evaluated", "after-log": "not-evaluated",
                        "own-decision": "not-evaluated"}
    # mode alone decides: the failed prerequisite does not turn log-line into "blocked" (which would count)
    assert (result.score, result.max_score, result.not_evaluated_points) == (0, 2, 8)
    log = result.check("log-line")
    assert not log.passed and log.hint is None and not log.skipped
    assert log.message.startswith("Needs a live cluster: ") and "3 points are left out of this score" in log.message
    assert "“The access log shows the request”" in log.message
    assert "builds on “The access log shows the request”" in result.check("after-log").message
    assert result.check("own-decision").message.startswith("Needs a live cluster: a real request would show")
    data = result.to_json()
    assert data["max_score"] == 2 and data["not_evaluated_points"] == 8
    assert [c["status"] for c in data["checks"]] == ["failed", "not-evaluated", "not-evaluated", "not-evaluated"]
    assert all(c["passed"] is False for c in data["checks"])


def test_not_evaluated_checks_do_not_fail_the_lab_but_are_said_in_text_and_junit():
    from graders.state import Gateway, Meta

    state = State(mode="simulated", description="simulated lab cluster",
                  gateways=(Gateway(Meta("Gateway", "default", "gw"), {}, ()),))
    result = _live_lab([]).evaluate(Context(state))
    assert result.all_passed and (result.score, result.max_score) == (2, 2)
    text = render_text(result)
    assert "⏸️  The access log shows the request [log-line, 3 pt not counted: not evaluated here]" in text
    assert "score 2/2: all evaluated checks passed" in text
    assert "8 more points not evaluated (they need a live cluster): left out of the score." in text
    suite = ET.fromstring(render_junit(result).split("?>", 1)[1])
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "3")
    case = suite.findall("testcase")[1]
    assert case.get("status") == "not-evaluated" and case.find("skipped").get("type") == "not-evaluated"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert (props["max_score"], props["not_evaluated_points"]) == ("2", "8")


def test_live_only_checks_run_on_a_live_cluster():
    calls: list[str] = []
    result = _live_lab(calls).evaluate(Context(State(mode="live")))
    assert calls == ["config", "own-decision"]
    assert [c.status for c in result.checks] == ["failed", "blocked", "blocked", "passed"]
    assert (result.score, result.max_score, result.not_evaluated_points) == (4, 10, 0)


def test_text_counts_failed_and_blocked_apart():
    result = _toy_lab([]).evaluate(Context(State(mode="simulated")))
    text = render_text(result)
    assert "score 3/6: 1 of 3 checks failed, 1 blocked by them" in text
    assert "⏭️  The Gateway is named right [gateway-named, 0/2, blocked]" in text


def test_batch_validation_keeps_status_and_leaves_not_evaluated_points_out():
    from graders.batch.nbparams import NotebookProblem, validate_result

    data = _live_lab([]).evaluate(Context(State(mode="snapshot"))).to_json()
    clean = validate_result(data, "lab97")
    assert (clean["score"], clean["max_score"]) == (0, 2)
    assert [c["status"] for c in clean["checks"]] == ["failed", "not-evaluated", "not-evaluated", "not-evaluated"]
    data["checks"][0]["status"] = "passed"  # contradicts passed: false
    with pytest.raises(NotebookProblem, match="status 'passed' with passed=False"):
        validate_result(data, "lab97")


def test_a_check_may_block_itself_when_only_some_cases_depend_on_another():
    from graders.checks import blocked

    lab = Lab("lab96", "x", chapter="c", notebook="n")
    lab.check("a", "Port exposed")(lambda ctx: failed("No.", "Look."))
    lab.check("b", "Reachable")(lambda ctx: blocked(["Port exposed"], "its port is not exposed"))
    result = lab.evaluate(Context(State(mode="simulated")))
    b = result.check("b")
    assert (b.status, b.hint, b.message) == ("blocked", None,
                                             "skipped: needs “Port exposed” first (its port is not exposed).")


@pytest.mark.parametrize("lab_id", ["lab01", "lab02", "lab03"])
def test_lab_notebook_text_says_where_what_and_how_to_hand_in(lab_id):
    """Every check has a cell; JupyterLab's path (lab01/work) is named next to the repository path; the hand-in
    is explained; batch grading is not said to read stored results; quiz answers are not all in one position."""
    import ast

    import nbformat

    from graders.labs import get

    lab = get(lab_id)
    nb = nbformat.read(REPO / lab.notebook, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert {c.id for c in lab.checks} <= {s.split('"')[1] for s in code if s.startswith("lab.check(")}
    assert f"`labs/{lab_id}/work/`" in text and f"**`{lab_id}/work`**" in text
    assert "*File → New → Text File*" in text
    assert "Hand in" in text and "python -m graders snapshot" in text
    assert "batch grading reads it" not in text and "Batch grading never reads the results stored" in text
    assert "Host: localhost`" not in text  # curl sends Host: localhost:8080
    answers = [kw.value.value for s in code if s.startswith("quiz(")
               for kw in ast.parse(s).body[0].value.keywords if kw.arg == "answer"]
    assert len(answers) >= 2 and len(set(answers)) >= 2, answers
