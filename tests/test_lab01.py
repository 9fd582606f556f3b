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
    "egress-selector": (["gateway-selects-pods", "gateway-port-reachable", "vs-bound", "vs-host-matches", *DOWNSTREAM],
                        ("gateway-selects-pods", "istio-system/istio-egressgateway, not the ingress", "spec.selector")),
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


# --- evidence from a live cluster (the fake API server) and from a snapshot's recorded probes ------------
REFERENCE = LAB_DIR / "solutions" / "reference"
APP = {"server": "istio-envoy", "x-envoy-upstream-service-time": "9", "content-type": "text/html"}


def _reference_objects() -> list[dict]:
    import yaml

    return [d for f in sorted(REFERENCE.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


@pytest.fixture
def live_cluster(fake_api, fake_kubeconfig):
    """The fake API server with the reference solution applied, and its kubeconfig."""
    fake_api.add_all(_reference_objects())
    return fake_api, fake_kubeconfig


def _live(fake_api, kubeconfig: str, routes: dict[str, str], hosts=("bookinfo.example.com",)):
    from fakeapi import FakeGateway

    with FakeGateway(routes, hosts=hosts) as gw:
        fake_api.set_portforward_backend(gw.address, 8080)  # the pod port behind Service port 80
        result = run("lab01", context="kind-istio-lab", kubeconfig=kubeconfig)
    return result, gw


def test_live_mode_sends_a_real_request_with_the_lab_host(live_cluster):
    fake_api, fake_kubeconfig = live_cluster
    result, gw = _live(fake_api, fake_kubeconfig, {"/productpage": "app"})
    assert result.mode == "live"
    assert failed_ids(result) == []
    assert result.check("request-productpage").message.startswith("Live request: GET http://bookinfo.example.com/")
    assert "HTTP 200 from the application" in result.check("request-productpage").message
    assert ("GET", "bookinfo.example.com", "/productpage") in gw.requests
    assert not [r for r in fake_api.requests if r.verb in ("create", "update", "patch", "delete")]


def test_live_gateway_404_is_told_apart_from_an_application_404(live_cluster):
    fake_api, fake_kubeconfig = live_cluster
    result, _ = _live(fake_api, fake_kubeconfig, {"/productpage": "app"}, hosts=("other.example.com",))
    chk = result.check("request-productpage")
    assert failed_ids(result) == ["request-productpage"]
    assert "HTTP 404 from the gateway itself" in chk.message and "Host header" in chk.hint

    result, _ = _live(fake_api, fake_kubeconfig, {"/productpage": "app-404"})
    chk = result.check("request-productpage")
    assert "HTTP 404 from the application" in chk.message and "gateway itself" not in chk.message


def _snapshot(tmp_path: Path, probes: list[dict]) -> str:
    import yaml

    from graders.sources.simulated import baseline_objects, render_operators
    from graders.sources.snapshot import snapshot_document

    objects = [r.obj for r in render_operators(baseline_objects())] + _reference_objects()
    doc = snapshot_document(objects, context="kind-istio-lab", taken_at="2026-11-30T10:00:00Z",
                            istio_installed=True, probes=probes)
    path = tmp_path / "snapshot.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _probe(status: int, headers: dict[str, str], body: str) -> dict:
    return {"gateway": "istio-system/istio-ingressgateway", "port": 80, "host": "bookinfo.example.com",
            "path": "/productpage", "method": "GET", "status": status, "headers": headers, "bodyExcerpt": body,
            "error": None, "at": "2026-11-30T10:00:01Z"}


def test_snapshot_mode_uses_the_recorded_probe(tmp_path):
    ok = run("lab01", snapshot=_snapshot(tmp_path, [_probe(200, APP, "<title>Simple Bookstore App</title>")]))
    assert ok.mode == "snapshot" and failed_ids(ok) == []
    assert ok.check("request-productpage").message.startswith("Recorded request (from the snapshot)")

    gw404 = run("lab01", snapshot=_snapshot(tmp_path, [_probe(404, {"server": "istio-envoy"}, "")]))
    assert failed_ids(gw404) == ["request-productpage"]
    assert "HTTP 404 from the gateway itself" in gw404.check("request-productpage").message


def test_snapshot_without_that_probe_falls_back_to_the_trace_and_says_so(tmp_path):
    result = run("lab01", snapshot=_snapshot(tmp_path, []))
    msg = result.check("request-productpage").message
    assert result.check("request-productpage").passed
    assert msg.startswith("Simulated request (no real request sent)") and "recorded no such request" in msg


@pytest.mark.kind
def test_reference_solution_passes_on_the_real_course_cluster():
    """On a machine with the course's kind cluster: `lab solve 1`, then every check passes with a live request."""
    import subprocess
    import sys

    from graders.errors import ClusterError
    from graders.sources.live import resolve_context

    context = "kind-istio-lab"
    try:
        resolve_context(context, None)
    except ClusterError as err:
        pytest.skip(f"no kind cluster for the course here ({err})")
    lab_cmd = [sys.executable, "-m", "graders", "lab"]
    subprocess.run([*lab_cmd, "solve", "1", "--context", context], check=True, timeout=600)
    try:
        result = run("lab01", context=context)
        assert failed_ids(result) == [], [(c.id, c.message) for c in result.checks if not c.passed]
        assert result.check("request-productpage").message.startswith("Live request:")
    finally:
        subprocess.run([*lab_cmd, "reset", "1", "--context", context], check=True, timeout=600)
