"""Lab 1 checks: the grading matrix (labs/lab01/matrix.yaml, tests/test_grading_matrix.py) holds which
checks each attempt fails and blocks; here, that the failing check's message names the right object and
its hint the right field, and the live and snapshot evidence."""

from __future__ import annotations

from pathlib import Path

import pytest
from grading_matrix import assert_root_cause, wrong_attempts

from graders.labs import run
from graders.labs.lab01 import LAB

LAB_DIR = Path(__file__).resolve().parents[1] / "labs" / "lab01"

# attempt -> (the check that fails, a substring of its message, a substring of its first hint)
PROBES = {
    "helm-selector": ("gateway-selects-pods", "istio=ingress", "spec.selector"),
    "egress-selector": ("gateway-selects-pods", "istio-system/istio-egressgateway, not the ingress", "spec.selector"),
    "no-selector": ("gateway-only-ingress", "has no spec.selector, and istiod applies", "spec.selector"),
    "vs-other-namespace": ("vs-bound", "means default/bookinfo-gateway", "own namespace"),
    "vs-host-mismatch": ("vs-host-matches", "(productpage)", "spec.hosts"),
    "wrong-host": ("request-productpage", "HTTP 404", "Host header"),
    "nodeport-in-gateway": ("gateway-port-reachable", "30080", "spec.servers[].port.number"),
    "destination-port-8080": ("route-to-productpage", "port 8080", "destination"),
    "dotted-destination-host": ("route-to-productpage", "'productpage.default'", "destination"),
    "only-productpage": ("route-all-paths", "/login", "spec.http[].match[]"),
    "port-without-name": ("gateway-exists", "port", "port"),
}


def failed_ids(result) -> list[str]:
    return [c.id for c in result.checks if not c.passed]


def test_every_wrong_attempt_on_disk_has_a_probe():
    assert wrong_attempts("lab01") == sorted(PROBES)


@pytest.mark.parametrize("attempt", sorted(PROBES))
def test_wrong_attempt_message_names_the_object_and_hint_the_field(attempt):
    assert_root_cause("lab01", attempt, PROBES[attempt])


def test_solutions_pass_with_a_simulated_request():
    for variant in sorted(p.name for p in (LAB_DIR / "solutions").iterdir()):
        result = run("lab01", paths=[str(LAB_DIR / "solutions" / variant)])
        assert result.score == result.max_score == sum(c.points for c in LAB.checks) == 15
        assert "Simulated request (no real request sent)" in result.check("request-productpage").message


def test_a_correct_virtual_service_is_judged_even_when_the_gateway_is_wrong():
    """One mistake costs points once: the selector and the port have checks of their own; the routes are
    judged as if the Gateway were right, and the message says so."""
    for attempt in ("helm-selector", "nodeport-in-gateway"):
        result = run("lab01", paths=[str(LAB_DIR / "wrong" / attempt)])
        route = result.check("route-to-productpage")
        assert route.passed and "judged as if Gateway default/bookinfo-gateway selected" in route.message
        assert result.check("request-productpage").status == "blocked"
    result = run("lab01", paths=[str(LAB_DIR / "solutions" / "reference")])
    assert "judged as if" not in result.check("route-to-productpage").message


def test_a_gateway_the_api_server_rejects_fails_gateway_exists_with_file_and_fix(tmp_path):
    bad = tmp_path / "gateway.yaml"
    bad.write_text((LAB_DIR / "solutions" / "reference" / "bookinfo-gateway.yaml").read_text().replace(
        "  - port: {number: 80, name: http, protocol: HTTP}   # a port of the gateway Service (80 -> 8080)\n", "  -"))
    result = run("lab01", paths=[str(bad)])
    chk = result.check("gateway-exists")
    assert chk.status == "failed" and "gateway.yaml:" in chk.message
    assert "the API server rejects such a Gateway, so it is never created" in chk.message
    assert result.check("vs-bound").status == "blocked"


def test_hints_use_commands_that_work_in_the_mode():
    result = run("lab01", paths=[str(LAB_DIR / "wrong" / "helm-selector")])
    hint = result.check("gateway-selects-pods").hint
    assert "`python -m graders get " in hint and "pods -n istio-system --show-labels" in hint  # Context.look
    assert all("kubectl" not in h for c in result.checks for h in c.hints[:1])


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


# --- only the learner's Gateways are judged (not another lab's left on the cluster) ---------------------
def _lab02_start(label: bool = True) -> list[dict]:
    import yaml

    from graders.labenv.ownership import labelled

    docs = [d for d in yaml.safe_load_all((LAB_DIR.parent / "lab02" / "start" / "bookinfo-gateway.yaml").read_text())
            if d]
    return [labelled(d, "02") if label else d for d in docs]


def test_live_another_labs_gateway_is_not_the_learners(fake_api, fake_kubeconfig):
    """`lab setup 2` left lab 2's Gateway and VirtualService (both labelled lab 02): lab 1 graded on that
    cluster must not find a Gateway the learner wrote, nor bind the VirtualService to it."""
    fake_api.add_all(_lab02_start())
    result = run("lab01", context="kind-istio-lab", kubeconfig=fake_kubeconfig)
    chk = result.check("gateway-exists")
    assert chk.status == "failed", chk.message
    assert "Gateway default/bookinfo-gateway belongs to another lab's setup" in chk.message
    assert result.check("vs-bound").status == "blocked"
    # The learner's own Gateway (unlabelled, wrong selector) is judged, never lab 2's on the ingress gateway.
    mine = next(d for d in _reference_objects() if d["kind"] == "Gateway")
    mine["metadata"] = {"name": "my-gateway", "namespace": "default"}
    mine["spec"]["selector"] = {"istio": "egressgateway"}
    fake_api.add(mine)
    result = run("lab01", context="kind-istio-lab", kubeconfig=fake_kubeconfig)
    assert result.check("gateway-exists").message == "Found Gateway default/my-gateway."
    assert result.check("gateway-selects-pods").status == "failed"
    assert "Gateway default/my-gateway" in result.check("gateway-selects-pods").message
    assert result.check("vs-bound").status == "failed", result.check("vs-bound").message


def test_live_unlabelled_gateway_and_this_labs_own_are_the_learners(fake_api, fake_kubeconfig):
    """`lab solve 1` labels its objects lab 01: they are this lab's; an unlabelled copy is the learner's."""
    from graders.labenv.ownership import labelled

    fake_api.add_all([labelled(d, "01") for d in _reference_objects()])
    assert run("lab01", context="kind-istio-lab", kubeconfig=fake_kubeconfig).check("vs-bound").passed


def test_files_another_labs_labelled_gateway_is_not_the_learners(tmp_path):
    """From files, an object exported with `kubectl get -o yaml` from another lab's setup keeps its labels:
    it is not judged as the learner's Gateway for lab 1."""
    import yaml

    (tmp_path / "lab02.yaml").write_text(yaml.safe_dump_all(_lab02_start()))
    result = run("lab01", paths=[str(tmp_path)])
    assert result.check("gateway-exists").status == "failed"
    (tmp_path / "lab02.yaml").write_text(yaml.safe_dump_all(_lab02_start(label=False)))
    assert run("lab01", paths=[str(tmp_path)]).check("vs-bound").passed  # unlabelled: the learner's own


def test_checking_the_empty_work_folder_by_name_grades_the_start_state(tmp_path, monkeypatch, capsys):
    """`python -m graders check 1 labs/lab01/work/` on a fresh clone (the README's command) grades the lab's
    start state with a note, as the notebook does, instead of failing on an empty PATH (exit 2)."""
    import graders.labs as labs
    from graders.cli import main

    work = tmp_path / "lab01" / "work"
    work.mkdir(parents=True)
    (work / ".gitkeep").write_text("")
    monkeypatch.setattr(labs, "LABS_DIR", tmp_path)
    assert main(["check", "1", str(work)]) == 1  # checks ran (and failed: nothing is exposed yet)
    out = capsys.readouterr().out
    assert "has no YAML yet: grading the simulated lab cluster as the lab starts" in out
    assert "Your files:" not in out
    (work / "gateway.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    main(["check", "1", str(work)])
    assert f"Your files: {work}" in capsys.readouterr().out
