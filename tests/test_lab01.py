"""Lab 1 checks: every solution passes every check; each known wrong attempt fails exactly the
checks it should (the others pass), with a hint that points at the right object and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.labs import run
from graders.labs.lab01 import LAB

LAB_DIR = Path(__file__).resolve().parents[1] / "labs" / "lab01"
ALL = [c.id for c in LAB.checks]
DOWNSTREAM = ["route-to-productpage", "route-all-paths", "request-productpage"]

# attempt -> (checks that must fail, substrings of (check id, message or hint) that must appear)
WRONG = {
    "helm-selector": (["gateway-selects-pods", "gateway-port-reachable", "vs-bound", "vs-host-matches", *DOWNSTREAM],
                      ("gateway-selects-pods", "istio=ingress", "spec.selector")),
    "vs-other-namespace": (["vs-bound", "vs-host-matches", *DOWNSTREAM],
                           ("vs-bound", "means default/bookinfo-gateway", "own namespace")),
    "vs-host-mismatch": (["vs-host-matches", *DOWNSTREAM], ("vs-host-matches", "(productpage)", "spec.hosts")),
    "wrong-host": (["request-productpage"], ("request-productpage", "HTTP 404", "Host header")),
    "nodeport-in-gateway": (["gateway-port-reachable", *DOWNSTREAM],
                            ("gateway-port-reachable", "30080", "spec.servers[].port.number")),
    "destination-port-8080": (DOWNSTREAM, ("route-to-productpage", "port 8080", "destination")),
    "dotted-destination-host": (DOWNSTREAM, ("route-to-productpage", "'productpage.default'", "destination")),
    "only-productpage": (["route-all-paths"], ("route-all-paths", "/login", "spec.http[].match[]")),
}


def failed_ids(result) -> list[str]:
    return [c.id for c in result.checks if not c.passed]


def assert_attempt(lab_dir: Path, attempt: str, expected_failures: list[str], probe: tuple[str, str, str]) -> None:
    result = run(lab_dir.name, paths=[str(lab_dir / "wrong" / attempt)])
    assert failed_ids(result) == [c for c in [c.id for c in result.checks] if c in expected_failures]
    check_id, in_message, in_hint = probe
    chk = result.check(check_id)
    assert not chk.skipped, f"{check_id} is the root cause and must not be skipped"
    assert in_message in chk.message
    assert chk.hint and in_hint in chk.hint
    for c in result.checks:
        if c.skipped:
            assert c.message.startswith("skipped: needs ") and c.hint is None


def test_every_wrong_attempt_on_disk_is_covered():
    assert sorted(p.name for p in (LAB_DIR / "wrong").iterdir()) == sorted(WRONG)
    assert len(WRONG) >= 4


@pytest.mark.parametrize("variant", sorted(p.name for p in (LAB_DIR / "solutions").iterdir()))
def test_solution_passes_every_check(variant):
    result = run("lab01", paths=[str(LAB_DIR / "solutions" / variant)])
    assert failed_ids(result) == [], [(c.id, c.message) for c in result.checks if not c.passed]
    assert result.score == result.max_score == sum(c.points for c in LAB.checks)
    assert result.mode == "simulated"
    assert "Simulated request (no real request sent)" in result.check("request-productpage").message


@pytest.mark.parametrize("attempt", sorted(WRONG))
def test_wrong_attempt_fails_exactly_its_checks(attempt):
    expected, probe = WRONG[attempt]
    assert_attempt(LAB_DIR, attempt, expected, probe)


def test_empty_work_folder_grades_the_start_and_says_so(tmp_path, monkeypatch):
    import graders.labs as labs

    monkeypatch.setattr(labs, "LABS_DIR", tmp_path)
    (tmp_path / "lab01" / "work").mkdir(parents=True)
    result = run("1")
    assert any("has no YAML yet" in n for n in result.notes)
    assert failed_ids(result)[0] == "gateway-exists"
    assert result.check("istio-bookinfo-ready").passed


def test_hints_do_not_give_away_the_expected_selector_value():
    result = run("lab01", paths=[str(LAB_DIR / "wrong" / "helm-selector")])
    chk = result.check("gateway-selects-pods")
    assert all("ingressgateway" not in h for h in chk.hints)
