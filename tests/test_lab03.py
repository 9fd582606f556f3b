"""Lab 3 (host/port conflicts): every solution passes, every known wrong attempt fails exactly the
checks it should with a hint that points at the right field, and the conflict winner is named
with the right reason in simulated and in timestamped (cluster-like) states."""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.checks import Context
from graders.labs import lab_dir, run
from graders.labs.lab03 import LAB, ready
from graders.sources import load_state

LAB_DIR = lab_dir(LAB)
START = LAB_DIR / "start"


def variants(kind: str, lab_path: Path = LAB_DIR) -> list[str]:
    return sorted(p.name for p in (lab_path / kind).iterdir() if p.is_dir())


def failing(result) -> set[str]:
    return {c.id for c in result.checks if not c.passed}


def assert_fails_exactly(result, expected: set[str], hint_words: dict[str, str]) -> None:
    """The attempt fails exactly ``expected``; each named failure carries two progressive hints, the
    first containing the given words; every other check passes."""
    assert failing(result) == expected, [(c.id, c.message) for c in result.checks if not c.passed]
    for check_id, words in hint_words.items():
        chk = result.check(check_id)
        assert not chk.skipped, chk.message
        assert len(chk.hints) >= 2, chk
        assert words.lower() in chk.hints[0].lower(), chk.hints
    for chk in result.checks:
        assert "assert" not in chk.message.lower()
        if not chk.passed and not chk.skipped:
            assert chk.hint, f"{chk.id} failed without a hint"


def empty_file(tmp_path: Path) -> str:
    """A YAML file with no objects: grades the lab's start state alone (never the learner's work/)."""
    path = tmp_path / "nothing.yaml"
    path.write_text("# no objects\n")
    return str(path)


@pytest.mark.parametrize("variant", variants("solutions"))
def test_every_solution_passes_every_check(variant):
    result = run("lab03", paths=[str(LAB_DIR / "solutions" / variant)])
    assert failing(result) == set(), [(c.id, c.message) for c in result.checks if not c.passed]
    assert result.score == result.max_score


WRONG = {
    # VS in test says `bookinfo-gateway` (istio/istio#11131): resolves by luck, the lab wants ns/name.
    "short-gateway-ref": ({"refs-qualified"}, {"refs-qualified": "spec.gateways of VirtualService test/bookinfo"}),
    # test keeps hosts "*": it still overlaps default's host on the shared listener.
    "star-one-side": ({"refs-qualified", "no-conflict"}, {"no-conflict": "spec.servers[].hosts"}),
    # distinct hosts only in the VirtualServices: the Gateways still both claim "*".
    "vs-hosts-only": ({"no-conflict"}, {"no-conflict": "spec.servers[].hosts"}),
    # a new port for test that the gateway Service does not expose.
    # (test-reachable is blocked by it, not failed again: one mistake costs points once)
    "port-not-on-service": ({"ports-exposed", "test-reachable"}, {"ports-exposed": "istio-ingressgateway"}),
    # Gateway and VirtualService hosts disagree: a gateway 404 for the Host the Gateway accepts.
    "vs-host-mismatch": ({"test-reachable"}, {"test-reachable": "spec.hosts of the VirtualService"}),
}


def test_every_wrong_attempt_has_an_expectation():
    assert set(variants("wrong")) == set(WRONG)


@pytest.mark.parametrize("attempt", sorted(WRONG))
def test_wrong_attempt_fails_exactly_the_right_checks(attempt):
    expected, hints = WRONG[attempt]
    result = run("lab03", paths=[str(LAB_DIR / "wrong" / attempt)])
    assert_fails_exactly(result, expected, hints)


def test_port_not_exposed_blocks_the_request_check_instead_of_failing_it_again():
    result = run("lab03", paths=[str(LAB_DIR / "wrong" / "port-not-on-service")])
    chk = result.check("test-reachable")
    assert chk.status == "blocked" and chk.hint is None
    assert chk.message.startswith(
        "skipped: needs “Each Bookinfo Gateway port is reachable through the gateway Service”")
    assert "no port of Gateway test/bookinfo-gateway is reachable" in chk.message


def test_vs_hosts_only_says_exactly_why_it_does_not_pass():
    """Both namespaces answer (no shared * virtual host exists); the lab requires distinct Gateway hosts
    (IST0145), and the message says that, not a false "default takes every path"."""
    result = run("lab03", paths=[str(LAB_DIR / "wrong" / "vs-hosts-only")])
    assert result.check("default-reachable").passed and result.check("test-reachable").passed
    msg = result.check("no-conflict").message
    assert "IST0145" in msg and "both namespaces are reachable" in msg
    assert "this lab asks each Gateway to claim only its own host names" in msg
    assert "shared virtual host" not in msg and "takes every path" not in msg


def test_start_state_names_the_winner_and_why(tmp_path):
    result = run("lab03", paths=[empty_file(tmp_path)])
    assert {"no-conflict", "test-reachable"} <= failing(result)
    assert result.check("default-reachable").passed
    conflict = result.check("no-conflict").message
    assert "default/bookinfo-gateway wins" in conflict
    assert "simulated cluster" in conflict and "start state" in conflict and "loaded first" in conflict
    reach = result.check("test-reachable").message
    assert reach.startswith("Simulated request") and "default/productpage" in reach


def _timestamped(tmp_path: Path, default_ts: str, test_ts: str) -> str:
    """Both Gateways with explicit creationTimestamps, as a cluster reports them."""
    docs = []
    for ns, ts in (("default", default_ts), ("test", test_ts)):
        docs.append(f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: bookinfo-gateway, namespace: {ns}, creationTimestamp: "{ts}"}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 8080, name: http, protocol: HTTP}}
    hosts: ["*"]
""")
    path = tmp_path / "gateways.yaml"
    path.write_text("---\n".join(docs))
    return str(path)


def test_older_gateway_wins_by_creation_time(tmp_path):
    path = _timestamped(tmp_path, "2026-11-30T10:00:05Z", "2026-11-30T10:00:01Z")
    message = run("lab03", paths=[path]).check("no-conflict").message
    assert "test/bookinfo-gateway wins because it is older" in message


def test_same_second_falls_back_to_namespace_for_equal_names(tmp_path):
    path = _timestamped(tmp_path, "2026-11-30T10:00:01Z", "2026-11-30T10:00:01Z")
    message = run("lab03", paths=[path]).check("no-conflict").message
    assert "default/bookinfo-gateway wins" in message and "namespace decides" in message


def test_reference_solution_needs_the_host_header():
    """The classic follow-up mistake: distinct hosts, then curl without -H Host gets the gateway's own 404."""
    state = load_state([str(START), str(LAB_DIR / "solutions" / "reference")])
    ctx = Context(state)
    plain = ctx.request(port=80, host="localhost", path="/productpage", service="test/productpage")
    assert not plain.ok and plain.status == 404 and plain.trace.outcome == "not-found"
    with_host = ctx.request(port=80, host="bookinfo.test.example", path="/productpage", service="test/productpage")
    assert with_host.ok


def snapshot_of(tmp_path: Path, extra_dirs: list[Path], probes: list[dict]) -> str:
    """A snapshot as `python -m graders snapshot` writes it: the whole cluster plus recorded probes."""
    import yaml

    from graders.sources.simulated import baseline_objects, render_operators
    from graders.sources.snapshot import snapshot_document
    from graders.yamlio import load_paths

    raws = render_operators(baseline_objects() + load_paths([str(d) for d in extra_dirs], seq_start=10_000_000))
    objects = [r.obj for r in raws if r.obj.get("kind") != "IstioOperator"]
    doc = snapshot_document(objects, context="kind-istio-lab", taken_at="2026-11-30T10:00:00Z",
                            istio_installed=True, probes=probes)
    path = tmp_path / "snapshot.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _page(host: str) -> dict:
    return {"gateway": "istio-system/istio-ingressgateway", "port": 80, "host": host, "path": "/productpage",
            "method": "GET", "status": 200, "bodyExcerpt": "<title>Simple Bookstore App</title>",
            "headers": {"server": "istio-envoy", "x-envoy-upstream-service-time": "12"}}


def test_recorded_page_counts_only_when_the_configuration_routes_it_to_that_namespace(tmp_path):
    """A recorded 200 proves *a* Bookinfo answered; which namespace is read from the configuration."""
    start_only = snapshot_of(tmp_path, [START], [_page("localhost")])
    result = run("lab03", snapshot=start_only)
    assert result.mode == "snapshot"
    assert result.check("default-reachable").passed
    test = result.check("test-reachable")
    assert not test.passed and test.message.startswith("Recorded request")
    assert "configuration routes this request to default/productpage" in test.message


def test_recorded_requests_with_host_headers_pass_the_solution(tmp_path):
    solved = snapshot_of(tmp_path, [START, LAB_DIR / "solutions" / "reference"],
                       [_page("bookinfo.default.example"), _page("bookinfo.test.example")])
    result = run("lab03", snapshot=solved)
    assert failing(result) == set()
    assert "(traced)" in result.check("test-reachable").message


def test_wildcard_overlap_names_the_wildcard_gateway():
    message = run("lab03", paths=[str(LAB_DIR / "wrong" / "star-one-side")]).check("no-conflict").message
    assert "the wildcard of test/bookinfo-gateway answers every host name" in message


def _seed(fake_api) -> None:
    """The fake cluster after `lab setup 3` and `kubectl apply` of the reference solution (later files win)."""
    from graders.yamlio import load_paths

    objs: dict[tuple, dict] = {}
    for r in load_paths([str(START), str(LAB_DIR / "solutions" / "reference")]):
        md = r.obj["metadata"]
        objs[(r.obj["kind"], md.get("namespace", "default"), md["name"])] = r.obj
    fake_api.add_all(sorted(objs.values(), key=lambda o: o["kind"] != "Namespace"))


def _grade(fake_api, kubeconfig: str, routes: dict[str, str], hosts: tuple[str, ...]):
    """Grade live; every port-forward reaches a fake gateway answering ``routes`` for ``hosts``."""
    from fakeapi import FakeGateway

    with FakeGateway(routes, hosts=hosts) as gw:
        fake_api.set_portforward_backend(gw.address)
        result = run("lab03", context="kind-istio-lab", kubeconfig=kubeconfig)
    return result, gw


def test_live_requests_carry_each_namespace_host(fake_api, fake_kubeconfig):
    _seed(fake_api)
    hosts = ("bookinfo.default.example", "bookinfo.test.example")
    result, gw = _grade(fake_api, fake_kubeconfig, {"/productpage": "app"}, hosts)
    assert failing(result) == set(), [(c.id, c.message) for c in result.checks if not c.passed]
    assert {("GET", h, "/productpage") for h in hosts} <= set(gw.requests)
    assert "routes it to test/productpage (traced)" in result.check("test-reachable").message


def test_live_gateway_404_and_application_404_get_different_hints(fake_api, fake_kubeconfig):
    _seed(fake_api)
    result, _ = _grade(fake_api, fake_kubeconfig, {"/productpage": "app"}, ("bookinfo.default.example",))
    gateway_404 = result.check("test-reachable")
    assert not gateway_404.passed and "from the gateway itself" in gateway_404.hints[0]
    result, _ = _grade(fake_api, fake_kubeconfig, {"/productpage": "app-404"}, ("bookinfo.test.example",))
    app_404 = result.check("test-reachable")
    assert not app_404.passed and "The application answered" in app_404.hints[0]
    assert "x-envoy-upstream-service-time" in app_404.message


def test_missing_test_copy_points_at_lab_setup(tmp_path):
    """Without the start state (what `lab setup 3` applies) there is no Bookinfo in test."""
    outcome = ready(Context(load_state([empty_file(tmp_path)])))
    assert not outcome.passed and "test/productpage" in outcome.message
    assert "lab setup" in outcome.hints[-1]
