"""The lab check framework: ordering, prerequisites, JSON shape, lab ids, renderers."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from graders.checks import Context, Lab, failed, passed
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
    assert list(data) == ["lab", "mode", "score", "max_score", "checks"]
    assert data["lab"] == "lab99" and data["mode"] == "simulated"
    assert [c["id"] for c in data["checks"]] == ["has-gateway", "gateway-named", "independent"]
    for c in data["checks"]:
        assert list(c) == ["id", "title", "points", "passed", "message", "hint"]
    assert data["checks"][2]["hint"] is None  # passed checks carry no hint


def test_only_runs_prerequisites_but_reports_just_the_asked_check():
    calls: list[str] = []
    result = _toy_lab(calls).evaluate(Context(State(mode="simulated")), only=["gateway-named"])
    assert [c.id for c in result.checks] == ["gateway-named"]
    assert calls == ["has-gateway"]
    assert result.checks[0].skipped


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
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    fail = cases[0].find("failure")
    assert fail.get("message") == "No Gateway found." and "hint: Look for kind: Gateway" in fail.text
    assert cases[1].find("failure").get("type") == "skipped"
    assert cases[2].find("failure") is None
