"""Conformance: TLS at the gateway, translated from Istio 1.30.3's own tests (issue #14).

Sources (each case id names the test, file and line of the case it translates):
- TestHTTPGateway, TestGatewayConflicts, TestTLSRouteTermination: pilot/pkg/networking/core/gateway_simulation_test.go
- TestMergeGateways: pilot/pkg/model/gateway_test.go
- TestBuildGatewayListeners, TestCreateGatewayHTTPFilterChainOpts: pilot/pkg/networking/core/gateway_test.go

Istio's simulation sends a TLS call with the Host as SNI; here that is ``trace --tls`` (SNI = --host) on
the lab gateway's Service port 443 (listener 8443). Istio's tests run without Secrets; where they
expect a routed call, the case adds the Secret in the gateway pod's namespace so the expectation
does not rest on "cannot verify". Not translated: the TLSRoute (Gateway API) termination cases,
which need istiod-internal annotations a classic VirtualService cannot carry (see NOT_TRANSLATED.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from cli import analyze, findings, trace
from networking import app, dest, gateway, meta, prefix, rule, server, stream, virtual_service

SIM = "gateway_simulation_test.go"
MERGE = "model/gateway_test.go"
GWT = "core/gateway_test.go"


def secret(name: str, ns: str = "istio-system") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta(name, ns), "type": "kubernetes.io/tls"}


def https(*hosts: str, mode: str = "SIMPLE", credential: str = "sds-credential", name: str = "https",
          redirect: bool = False, protocol: str = "HTTPS") -> dict[str, Any]:
    tls: dict[str, Any] = {"mode": mode}
    if credential:
        tls["credentialName"] = credential
    return server(443, *hosts, protocol=protocol, name=name, redirect=redirect, tls=tls)


def tls_vs(name: str, hosts: list[str], sni: list[str], target: str, port: int, gateways: list[str],
           ns: str = "default", created: int | None = None) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta(name, ns, created),
            "spec": {"hosts": hosts, "gateways": gateways,
                     "tls": [{"match": [{"port": 443, "sniHosts": sni}], "route": [dest(target, port)]}]}}


SIMPLE_ROUTE = virtual_service("vs", ["example.com"], ["gateway"], [rule(dest("b"), match=[prefix("/")])])
MYSITE = [*app("mysite", ports=(443,))]

# (id, objects, request, expected (outcome, destination service, tls.server))
CASES: list[tuple[str, str, dict[str, Any], tuple[str, str | None, str | None]]] = [
    (f"TestHTTPGateway {SIM}:558 httpsRedirect on https: routed, not redirected",
     stream(gateway("gateway", https("example.com", redirect=True, credential="test")), SIMPLE_ROUTE, app("b"),
            secret("test")),
     {"host": "example.com"}, ("ok", "default/b", "default/gateway servers[0]")),
    (f"TestGatewayConflicts {SIM}:661 duplicate tls gateway: ./* in two namespaces, multiple filter chains",
     stream(gateway("default", https("./*", name="https-ingress"), ns="istio-system", created=1),
            gateway("default", https("./*", name="https-ingress"), ns="default", created=2), secret("sds-credential")),
     {"host": "foo.bar"}, ("tls-handshake-failed", None, None)),
    (f"TestGatewayConflicts {SIM}:677 duplicate tls virtual service: the first rule keeps the SNI",
     stream(gateway("ingressgateway", https("*.example.com", mode="PASSTHROUGH", credential=""), ns="istio-system"),
            tls_vs("vs1", ["mysite.example.com"], ["mysite.example.com"], "mysite.default.svc.cluster.local", 443,
                   ["istio-system/ingressgateway"], created=1),
            tls_vs("vs2", ["mysite.example.com"], ["mysite.example.com"], "mysite.default.svc.cluster.local", 443,
                   ["istio-system/ingressgateway"], created=2), MYSITE),
     {"host": "mysite.example.com"}, ("ok", "default/mysite", "istio-system/ingressgateway servers[0]")),
    (f"TestTLSRouteTermination {SIM}:2233 tls passthrough request (as a classic tls route)",
     stream(gateway("gateway", https("*/example.com", mode="PASSTHROUGH", credential="", protocol="TLS",
                                     name="tls-passthrough"), ns="istio-system"),
            tls_vs("tls-route-vs", ["example.com"], ["example.com"], "backend.default.svc.cluster.local", 8080,
                   ["istio-system/gateway"]), app("backend", ports=(8080,))),
     {"host": "example.com"}, ("ok", "default/backend", "istio-system/gateway servers[0]")),
    (f"TestMergeGateways {MERGE}:196 simple-passthrough: SIMPLE *.example.com terminates other names",
     stream(gateway("foo-simple", https("*.example.com"), ns="not-default-2", created=1),
            gateway("foo-passthrough", https("foo.example.com", mode="PASSTHROUGH", credential="", protocol="TLS",
                                             name="tls-foo"), ns="not-default-2", created=2),
            virtual_service("vs", ["*.example.com"], ["not-default-2/foo-simple"], [rule(dest("b"))]), app("b"),
            tls_vs("pt", ["foo.example.com"], ["foo.example.com"], "mysite", 443, ["not-default-2/foo-passthrough"]),
            MYSITE, secret("sds-credential")),
     {"host": "bar.example.com"}, ("ok", "default/b", "not-default-2/foo-simple servers[0]")),
    (f"TestMergeGateways {MERGE}:196 simple-passthrough: the exact passthrough SNI beats the wildcard",
     stream(gateway("foo-simple", https("*.example.com"), ns="not-default-2", created=1),
            gateway("foo-passthrough", https("foo.example.com", mode="PASSTHROUGH", credential="", protocol="TLS",
                                             name="tls-foo"), ns="not-default-2", created=2),
            tls_vs("pt", ["foo.example.com"], ["foo.example.com"], "mysite", 443, ["not-default-2/foo-passthrough"]),
            MYSITE, secret("sds-credential")),
     {"host": "foo.example.com"}, ("ok", "default/mysite", "not-default-2/foo-passthrough servers[0]")),
    (f"TestBuildGatewayListeners {GWT}:3016 gateway with simple and passthrough: the second *.example.com is dropped",
     stream(gateway("gw-a", https("*.example.com", credential="test", name="http"), ns="ns-a", created=1),
            gateway("passthrough-gateway", https("*.example.com", credential="test", name="http"), ns="testns",
                    created=2),
            virtual_service("vs", ["*.example.com"], ["testns/passthrough-gateway"], [rule(dest("b"))]), app("b"),
            secret("test")),
     {"host": "foo.example.com"}, ("not-found", None, "ns-a/gw-a servers[0]")),
    (f"TestCreateGatewayHTTPFilterChainOpts {GWT}:1690 duplicate hosts in one server: one chain, no conflict",
     stream(gateway("gw", https("example.org", "example.org", mode="ISTIO_MUTUAL", credential="")),
            virtual_service("vs", ["example.org"], ["gw"], [rule(dest("b"))]), app("b")),
     {"host": "example.org"}, ("ok", "default/b", "default/gw servers[0]")),
    (f"TestCreateGatewayHTTPFilterChainOpts {GWT}:1874 wildcard hosts in TLS filterChain are not duplicates",
     stream(gateway("gw", https("*.example.org", "example.org", mode="ISTIO_MUTUAL", credential="")),
            virtual_service("vs", ["*.example.org"], ["gw"], [rule(dest("b"))]), app("b")),
     {"host": "a.example.org"}, ("ok", "default/b", "default/gw servers[0]")),
]


@pytest.mark.parametrize("objects,request_,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_tls_trace(tmp_path, objects: str, request_: dict[str, Any], expected: tuple) -> None:
    r = trace(tmp_path, objects, tls=True, port=443, path="/", **request_)
    d = r["destination"]
    assert (r["outcome"], d["service"] if d else None, r["tls"]["server"]) == expected, r["steps"][-3:]


def test_duplicate_tls_gateway_is_a_listener_rejection_finding(tmp_path):
    """TestGatewayConflicts gateway_simulation_test.go:661 (ErrMultipleFilterChain, Istio bug #24638): the
    trace cannot know which chain answers, and the analyzer says Envoy rejects the listener."""
    objects = CASES[1][1]
    r = trace(tmp_path, objects, tls=True, port=443, host="foo.bar")
    assert r["steps"][-1].get("uncertain") and "rejects the whole listener" in r["steps"][-1]["result"]
    conflicts = findings(analyze(tmp_path, objects), "GW-CONFLICT")
    assert len(conflicts) == 1 and "rejects the whole listener" in conflicts[0]["message"]


def test_duplicate_tls_virtual_service_logs_the_skipped_rule(tmp_path):
    """TestGatewayConflicts gateway_simulation_test.go:677: vs2's rule is skipped with istiod's log line."""
    r = trace(tmp_path, CASES[2][1], tls=True, port=443, host="mysite.example.com")
    assert any("skipping VirtualService vs2 rule #0 on server port 443 of gateway istio-system/ingressgateway, "
               "duplicate SNI host names: [mysite.example.com]" in s["result"] for s in r["steps"])


def test_dropped_duplicate_server_is_reported_with_the_log_line(tmp_path):
    """TestBuildGatewayListeners gateway_test.go:3016: the newer Gateway's identical *.example.com server is
    skipped by mergeGateways (gateway.go:277-280), so its VirtualService routes are never reached."""
    f = findings(analyze(tmp_path, CASES[6][1]), "GW-CONFLICT")
    assert len(f) == 1 and "skipping server on gateway testns/passthrough-gateway, duplicate host names: " \
        "[*.example.com]" in f[0]["message"]


def test_servers_with_distinct_binds_do_not_conflict(tmp_path):
    """TestBuildGatewayListeners gateway_test.go:3478 multiple HTTPS servers with bind and same host: two
    listeners (10.0.0.1_443, 10.0.0.2_443), so no duplicate."""
    def bound(bind: str) -> dict[str, Any]:
        return {**https("*", credential="test", name="tcp"), "bind": bind}

    objects = stream(gateway("gateway1", bound("10.0.0.1"), ns="testns", created=1),
                     gateway("gateway2", bound("10.0.0.2"), ns="testns", created=2), secret("test"))
    assert findings(analyze(tmp_path, objects), "GW-CONFLICT") == []
