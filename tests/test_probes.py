"""Gateway probes: real HTTP to a local server imitating the gateway, directly and through the fake
API server's port-forward (WebSocket v4.channel.k8s.io, spoken by the real kubernetes client)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from fakeapi import FakeApiServer, FakeGateway, dead_url

from graders.errors import InputError
from graders.probes import PortForward, classify, probe, record_dict
from graders.state import ProbeRecord

CONTEXT = "kind-istio-lab"
ROUTES = {"/productpage": "app", "/missing": "app-404", "/reviews": "uh", "/ratings": "nc"}


def rec(status: int | None, headers: dict[str, str] | None = None, body: str = "", error: str | None = None):
    return ProbeRecord(gateway="istio-system/istio-ingressgateway", port=80, host="localhost", path="/",
                       status=status, headers=headers or {}, body_excerpt=body, error=error)


ENVOY = {"server": "istio-envoy"}
UPSTREAM = {"server": "istio-envoy", "x-envoy-upstream-service-time": "12"}


@pytest.mark.parametrize(("record", "expected"), [
    (rec(200, UPSTREAM, "<html>"), "app"),
    (rec(404, UPSTREAM, "<h1>Not Found</h1>"), "app"),          # the application's own 404
    (rec(404, UPSTREAM, ""), "app"),                            # even with an empty body: it came from upstream
    (rec(404, ENVOY, ""), "gateway-404-nr"),                     # route_not_found
    (rec(503, ENVOY, ""), "gateway-503-nc"),                     # cluster_not_found
    (rec(503, {**ENVOY, "content-type": "text/plain"}, "no healthy upstream"), "gateway-503-uh"),
    (rec(503, ENVOY, "upstream connect error or disconnect/reset before headers"), "gateway-503-uf"),
    (rec(301, {**ENVOY, "location": "https://localhost/"}), "gateway-301"),  # httpsRedirect, a local reply
    (rec(404, {"server": "nginx"}, ""), "not-gateway"),
    (rec(None, error="connection refused: nothing accepts connections on 127.0.0.1:8080"), "connection-refused"),
    (rec(None, error="connection reset: the connection closed without an HTTP response"), "connection-reset"),
    (rec(None, error="timeout: no response within 3 s"), "timeout"),
    (rec(None, error="no-ready-pod: no Ready pod behind Service istio-system/istio-ingressgateway"), "no-ready-pod"),
    (rec(None, error="error: something else"), "error"),
])
def test_classify(record: ProbeRecord, expected: str) -> None:
    assert classify(record) == expected


def test_probe_over_a_url_tells_app_from_gateway_replies() -> None:
    with FakeGateway(ROUTES, hosts=("bookinfo.example.com",)) as gw:
        ok = probe(gw.url, host="bookinfo.example.com", path="/productpage", retries=0)
        assert (ok.status, classify(ok)) == (200, "app")
        assert ok.headers["server"] == "istio-envoy" and "Simple Bookstore App" in ok.body_excerpt
        assert ok.at.endswith("Z") and ok.error is None
        assert gw.requests[-1] == ("GET", "bookinfo.example.com", "/productpage")  # Host header sent

        outcomes = {path: classify(probe(gw.url, host="bookinfo.example.com", path=path, retries=0))
                    for path in ("/missing", "/reviews", "/ratings", "/nowhere")}
        assert outcomes == {"/missing": "app", "/reviews": "gateway-503-uh", "/ratings": "gateway-503-nc",
                            "/nowhere": "gateway-404-nr"}
        wrong_host = probe(gw.url, host="other.example.com", path="/productpage", retries=0)
        assert classify(wrong_host) == "gateway-404-nr"


def test_retries_only_transient_outcomes() -> None:
    with FakeGateway(ROUTES) as gw:
        probe(gw.url, path="/productpage", retries=3)
        assert len(gw.requests) == 1
        gw.requests.clear()
        started = time.monotonic()
        last = probe(gw.url, path="/nowhere", retries=2)
        assert len(gw.requests) == 3 and classify(last) == "gateway-404-nr"
        assert time.monotonic() - started < 3  # pauses are short: 0.25 s then 0.5 s


def test_refused_and_timeout_are_bounded() -> None:
    refused = probe(dead_url(), retries=0)
    assert classify(refused) == "connection-refused" and refused.status is None

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # accepts (kernel backlog) but never answers
    try:
        started = time.monotonic()
        late = probe(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5, retries=2)
        assert classify(late) == "timeout"
        assert time.monotonic() - started < 3  # a timeout is not retried
    finally:
        silent.close()


def test_bad_url_is_input_error() -> None:
    with pytest.raises(InputError, match=r"http://127\.0\.0\.1:8080"):
        probe("https://127.0.0.1:8443")


@pytest.fixture
def gateway_behind_api(fake_api: FakeApiServer, fake_kubeconfig: str):
    with FakeGateway(ROUTES) as gw:
        fake_api.set_portforward_backend(gw.address, 8080)  # the gateway pod's port 8080 (Service port 80)
        yield fake_api, fake_kubeconfig, gw


def test_probe_through_a_port_forward(gateway_behind_api) -> None:
    api, kubeconfig, gw = gateway_behind_api
    api.clear_requests()
    record = probe(PortForward(CONTEXT, kubeconfig), path="/productpage", host="bookinfo.example.com", retries=0)
    assert (record.status, classify(record)) == (200, "app")
    assert gw.requests == [("GET", "bookinfo.example.com", "/productpage")]
    assert [(r.verb, r.path) for r in api.requests][:2] == [
        ("get", "/api/v1/namespaces/istio-system/services/istio-ingressgateway"),
        ("list", "/api/v1/namespaces/istio-system/pods")]
    pf = api.requests[2]
    assert pf.verb == "portforward" and pf.query == {"ports": "8080"}  # the targetPort behind Service port 80
    assert pf.path.startswith("/api/v1/namespaces/istio-system/pods/istio-ingressgateway-")
    assert {r.method for r in api.requests} == {"GET"}
    assert classify(probe(PortForward(CONTEXT, kubeconfig), path="/reviews", retries=0)) == "gateway-503-uh"


def test_port_forward_failures(gateway_behind_api) -> None:
    api, kubeconfig, _ = gateway_behind_api
    target = PortForward(CONTEXT, kubeconfig)
    no_port = probe(target, port=8081, retries=0)
    assert classify(no_port) == "connection-refused" and "has no port 8081" in (no_port.error or "")

    no_listener = probe(target, port=443, retries=0)  # Service 443 -> pod 8443, where nothing listens
    assert classify(no_listener) == "connection-refused" and "port 8443" in (no_listener.error or "")

    api.set_ready("istio-system", "istio-ingressgateway", False)
    assert classify(probe(target, retries=0)) == "no-ready-pod"


def test_waits_for_the_gateway_pod_to_become_ready(gateway_behind_api) -> None:
    api, kubeconfig, _ = gateway_behind_api
    api.set_ready("istio-system", "istio-ingressgateway", False)
    timer = threading.Timer(0.3, api.set_ready, ("istio-system", "istio-ingressgateway", True))
    timer.start()
    try:
        record = probe(PortForward(CONTEXT, kubeconfig), path="/productpage", retries=4)
    finally:
        timer.cancel()
    assert classify(record) == "app"
    assert len(api.calls("portforward")) == 1


def test_unknown_context_for_port_forward_is_a_cluster_error(fake_kubeconfig: str, tmp_path: Path) -> None:
    from graders.errors import ClusterError

    with pytest.raises(ClusterError, match="'nope' is not in kubeconfig"):
        probe(PortForward("nope", fake_kubeconfig))


def test_record_dict_matches_the_snapshot_format() -> None:
    from graders.sources.snapshot import _probe

    record = rec(503, {**ENVOY, "content-type": "text/plain"}, "no healthy upstream")
    assert _probe(record_dict(record), "test") == record


@pytest.mark.kind
def test_probe_the_real_course_gateway() -> None:
    from graders.errors import ClusterError
    from graders.probes import KIND_HTTP_URL
    from graders.sources.live import resolve_context

    try:
        resolve_context(CONTEXT, None)
    except ClusterError as err:
        pytest.skip(f"no kind cluster for the course here ({err})")
    for target in (KIND_HTTP_URL, PortForward(CONTEXT)):
        record = probe(target, path="/productpage", retries=3)
        # Without the lab 1 routing the gateway answers 404 NR itself; with it, Bookinfo answers.
        assert classify(record) in ("app", "gateway-404-nr"), record
        assert record.headers.get("server") == "istio-envoy"
