"""Conformance: gateway merging, listeners and virtual hosts, translated from Istio 1.30.3's own tests.

Sources (each case id names the test, file and line of the case it translates):
- TestHTTPGateway, TestGatewayConflicts: pilot/pkg/networking/core/gateway_simulation_test.go
- TestMergeGateways: pilot/pkg/model/gateway_test.go
- TestGatewayHTTPRouteConfig, TestBuildGatewayListeners: pilot/pkg/networking/core/gateway_test.go

Istio's tests observe Envoy config (listener, virtual host, cluster names); each case here states the
same expectation as what the course shows a learner: the trace's outcome, status and destination
Service, or the finding and the objects it names. Ports follow the lab gateway (see networking.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from cli import analyze, findings, trace
from engine_helpers import course_operator
from networking import (
    app,
    dest,
    exact,
    gateway,
    outcome,
    prefix,
    rule,
    server,
    stream,
    virtual_service,
)

SIM = "gateway_simulation_test.go"
MERGE = "model/gateway_test.go"
GWT = "core/gateway_test.go"

PRODUCTPAGE = [rule(dest("productpage", 9080), match=[exact("/productpage")])]
VS_B = virtual_service("vs", ["example.com"], ["gateway"], [rule(dest("b"), match=[prefix("/")])])
VS_A = virtual_service("a", ["*"], ["gateway"], [rule(dest("a"))])
PORT_81 = "          - {name: http-81, port: 81, targetPort: 81, nodePort: 30082}"
TCP_BOOKINFO = virtual_service("bookinfo", ["*"], ["istio-system/gateway"],
                               tcp=[{"route": [dest("productpage", 9080)]}])


def _tcp_gateway(name: str, ns: str) -> dict[str, Any]:
    return gateway(name, server(80, "foo.bar", protocol="TCP"), ns=ns, created=0)


# (id, objects, request, expected (outcome, status, destination service))
TRACE_CASES: list[tuple[str, str, dict[str, Any], tuple[str, int | None, str | None]]] = [
    # --- TestHTTPGateway ---------------------------------------------------------------------------
    (f"TestHTTPGateway {SIM}:287 no virtual services, defined port: blackhole 404",
     stream(gateway("gateway", server(80, "foo.bar"))), {"host": "foo.bar"}, ("not-found", 404, None)),
    (f"TestHTTPGateway {SIM}:287 no virtual services, undefined port: no listener",
     stream(gateway("gateway", server(80, "foo.bar"))), {"host": "foo.bar", "port": 443},
     ("connection-refused", None, None)),
    (f"TestHTTPGateway {SIM}:320 simple http and virtual service, uri mismatch",
     stream(gateway("gateway", server(80, "foo.bar")), virtual_service("bookinfo", ["*"], ["gateway"], PRODUCTPAGE)),
     {"host": "foo.bar"}, ("not-found", 404, None)),
    (f"TestHTTPGateway {SIM}:320 simple http and virtual service, host mismatch",
     stream(gateway("gateway", server(80, "foo.bar")), virtual_service("bookinfo", ["*"], ["gateway"], PRODUCTPAGE)),
     {"host": "bad.bar", "path": "/productpage"}, ("not-found", 404, None)),
    (f"TestHTTPGateway {SIM}:320 simple http and virtual service, match",
     stream(gateway("gateway", server(80, "foo.bar")), virtual_service("bookinfo", ["*"], ["gateway"], PRODUCTPAGE)),
     {"host": "foo.bar", "path": "/productpage"}, ("ok", None, "default/productpage")),
    *[(f"TestHTTPGateway {SIM}:388 virtual service merging, {host}",
       stream(app("a"), app("b"), gateway("gateway", server(80, "*.example.com")),
              virtual_service("a", ["a.example.com"], ["gateway"], [rule(dest("a", 80), match=[prefix("/")])]),
              virtual_service("b", ["b.example.com"], ["gateway"], [rule(dest("b", 80), match=[prefix("/")])])),
       {"host": host}, expected)
      for host, expected in [("a.example.com", ("ok", None, "default/a")), ("b.example.com", ("ok", None, "default/b")),
                             ("c.example.com", ("not-found", 404, None))]],
    (f"TestHTTPGateway {SIM}:464 httpsRedirect without routes",
     stream(gateway("gateway", server(80, "example.com", redirect=True))), {"host": "example.com"}, ("ok", 301, None)),
    (f"TestHTTPGateway {SIM}:494 httpsRedirect with routes: the routes are never reached",
     stream(app("b"), gateway("gateway", server(80, "example.com", redirect=True)), VS_B), {"host": "example.com"},
     ("ok", 301, None)),
    (f"TestHTTPGateway {SIM}:525 mixed httpsRedirect with routes: one redirecting server redirects the host",
     stream(app("b"), gateway("gateway", server(80, "example.com", redirect=True), created=1),
            gateway("gateway2", server(80, "example.com"), created=2), VS_B), {"host": "example.com"},
     ("ok", 301, None)),
    # --- TestGatewayConflicts ----------------------------------------------------------------------
    (f"TestGatewayConflicts {SIM}:632 duplicate cross namespace gateway collision: alpha/gateway merges first "
     "(same age and name, namespace decides) and has no tcp route, so no listener",
     stream(_tcp_gateway("gateway", "istio-system"), _tcp_gateway("gateway", "alpha"), TCP_BOOKINFO), {},
     ("connection-refused", None, None)),
    (f"TestGatewayConflicts {SIM}:648 duplicate cross namespace gateway collision - selected first",
     stream(_tcp_gateway("gateway", "istio-system"), _tcp_gateway("gateway", "zeta"), TCP_BOOKINFO), {},
     ("ok", None, "default/productpage")),
    (f"TestGatewayConflicts {SIM}:753 multiple protocols on a port - tcp first: no tcp route, no listener",
     stream(gateway("alpha", server(80, "foo.bar", protocol="TCP"), created=0),
            gateway("beta", server(80, "foo.bar"), created=0)), {"host": "foo.bar"},
     ("connection-refused", None, None)),
    (f"TestGatewayConflicts {SIM}:772 multiple protocols on a port - http first: blackhole 404",
     stream(gateway("beta", server(80, "foo.bar", protocol="TCP"), created=0),
            gateway("alpha", server(80, "foo.bar"), created=0)), {"host": "foo.bar"}, ("not-found", 404, None)),
    *[(f"TestGatewayConflicts {SIM}:796 multiple wildcards with virtual service disambiguator, {ns}",
       stream(app("echo", "ns-1"), app("echo", "ns-2"),
              gateway("alpha", server(80, "ns-1/*.example.com"), created=0),
              gateway("beta", server(80, "ns-2/*.example.com"), created=0),
              virtual_service("default", ["ns-1.example.com"], ["default/alpha"], [rule(dest("echo"))], ns="ns-1"),
              virtual_service("default", ["ns-2.example.com"], ["default/beta"], [rule(dest("echo"))], ns="ns-2")),
       {"host": f"{ns}.example.com"}, ("ok", None, f"{ns}/echo")) for ns in ("ns-1", "ns-2")],
    *[(f"TestGatewayConflicts {SIM}:871 multiple virtual services that should become separate vhosts, {host}{path}",
       stream(app("echo-foobar"), app("echo-foo"), app("echo-bar"),
              gateway("public-gw", server(80, "foo.example.com", "bar.example.com"), ns="istio-system"),
              virtual_service("foobar-vs", ["foo.example.com", "bar.example.com"], ["istio-system/public-gw"],
                              [rule(dest("echo-foobar"), match=[prefix("/1"), prefix("/2"), prefix("/3")])],
                              created=0),
              virtual_service("foo-vs", ["foo.example.com"], ["istio-system/public-gw"],
                              [rule(dest("echo-foo", 80), match=[prefix("/foo")])], created=1),
              virtual_service("bar-vs", ["bar.example.com"], ["istio-system/public-gw"],
                              [rule(dest("echo-bar", 80), match=[prefix("/bar")])], created=2)),
       {"host": host, "path": path}, ("ok", None, f"default/{svc}"))
      for host, path, svc in [("foo.example.com", "/1", "echo-foobar"), ("foo.example.com", "/foo", "echo-foo"),
                              ("bar.example.com", "/bar", "echo-bar"), ("bar.example.com", "/3", "echo-foobar")]],
    # --- TestMergeGateways (observables of the merged servers) -------------------------------------
    *[(f"TestMergeGateways {MERGE}:115 two servers on the same port: both hosts route, {host}",
       stream(app("a"), app("b"), gateway("foo1", server(80, "foo.bar.com"), created=0),
              gateway("bar1", server(80, "bar.foo.com"), created=1),
              virtual_service("a", ["foo.bar.com"], ["foo1"], [rule(dest("a"))]),
              virtual_service("b", ["bar.foo.com"], ["bar1"], [rule(dest("b"))])),
       {"host": host}, ("ok", None, svc))
      for host, svc in [("foo.bar.com", "default/a"), ("bar.foo.com", "default/b")]],
    *[(f"TestMergeGateways {MERGE}:135 same-server-config: a named host and * merge on one listener, {host}",
       stream(app("a"), app("b"), gateway("foo1", server(80, "foo.bar.com"), created=0),
              gateway("foo2", server(80, "*"), created=1),
              virtual_service("a", ["foo.bar.com"], ["foo1"], [rule(dest("a"))]),
              virtual_service("b", ["*"], ["foo2"], [rule(dest("b"))])),
       {"host": host}, ("ok", None, svc)) for host, svc in [("foo.bar.com", "default/a"), ("other.com", "default/b")]],
    *[(f"TestMergeGateways {MERGE}:145 multi-server-config: two ports, two listeners, port {port}",
       stream(app("a"), gateway("foo3", server(port, "*"), created=0),
              virtual_service("a", ["*"], ["foo3"], [rule(dest("a"))])),
       {"port": port}, ("ok", None, "default/a")) for port in (80, 443)],
    (f"TestMergeGateways {MERGE}:165 tcp-http-server-config: the older TCP server keeps the port",
     stream(app("a"), gateway("foo4", server(80, "*", protocol="TCP"), created=0),
            gateway("foo3", server(80, "*"), created=1), virtual_service("a", ["*"], ["foo3"], [rule(dest("a"))])),
     {}, ("connection-refused", None, None)),
    (f"TestMergeGateways {MERGE}:175 tcp-tcp-server-config (HTTP first): the newer TCP server is dropped",
     stream(app("a"), gateway("foo3", server(80, "*"), created=0),
            gateway("foo4", server(80, "*", protocol="TCP"), created=1),
            virtual_service("a", ["*"], ["foo3"], [rule(dest("a"))])),
     {}, ("ok", None, "default/a")),
    (f"TestMergeGateways {MERGE}:185 http-http2-server-config: HTTP and HTTP2 merge into one route table",
     stream(app("a"), gateway("foo3", server(80, "*"), created=0),
            gateway("foo5", server(80, "*", protocol="HTTP2"), created=1),
            virtual_service("a", ["*"], ["foo5"], [rule(dest("a"))])),
     {}, ("ok", None, "default/a")),
    # --- TestGatewayHTTPRouteConfig -------------------------------------------------------------------
    (f"TestGatewayHTTPRouteConfig {GWT}:2543 404 when no services",
     stream(gateway("gateway", server(80, "example.org"))), {"host": "example.org"}, ("not-found", 404, None)),
    (f"TestGatewayHTTPRouteConfig {GWT}:2561 tls redirect without virtual services",
     stream(gateway("gateway-redirect-noroutes", server(80, "example.org", redirect=True))), {"host": "example.org"},
     ("ok", 301, None)),
    (f"TestGatewayHTTPRouteConfig {GWT}:2579 virtual services with tls redirect",
     stream(app("example"), gateway("gateway-redirect", server(80, "example.org", redirect=True)),
            virtual_service("virtual-service", ["example.org"], ["gateway", "gateway-redirect"],
                            [rule(dest("example", 80))])), {"host": "example.org"}, ("ok", 301, None)),
    *[(f"TestGatewayHTTPRouteConfig {GWT}:{line} {name}: the virtual host redirects",
       stream(app("example"), gateway("gateway-redirect", server(80, "example.org", redirect=True), created=r),
              gateway("gateway", server(80, "example.org"), created=h),
              virtual_service("virtual-service", ["example.org"], ["gateway", "gateway-redirect"],
                              [rule(dest("example", 80))])), {"host": "example.org"}, ("ok", 301, None))
      for line, name, r, h in [(2596, "merging of virtual services when tls redirect is set", 0, 1),
                               (2613, "reverse merging of virtual services when tls redirect is set", 1, 0)]],
    (f"TestGatewayHTTPRouteConfig {GWT}:2664 add a route for a virtual service",
     stream(app("example"), gateway("gateway", server(80, "example.org")),
            virtual_service("virtual-service", ["example.org"], ["gateway"], [rule(dest("example", 80))])),
     {"host": "example.org"}, ("ok", None, "default/example")),
    (f"TestGatewayHTTPRouteConfig {GWT}:2679 duplicate virtual service should merge: the older one's route first",
     stream(app("a"), app("b"), gateway("gateway", server(80, "example.org")),
            virtual_service("virtual-service-copy", ["example.org"], ["gateway"], [rule(dest("b"))], created=2),
            virtual_service("virtual-service", ["example.org"], ["gateway"], [rule(dest("a"))], created=1)),
     {"host": "example.org"}, ("ok", None, "default/a")),
    *[(f"TestGatewayHTTPRouteConfig {GWT}:2694 duplicate virtual service case insensitive: each VirtualService "
       f"binds the Gateway host spelt like its own, both land in virtual host example.org, path {path}",
       stream(app("a"), app("b"), gateway("gateway", server(80, "example.org"), created=0),
              gateway("case-insensitive-gateway", server(80, "Example.org"), created=1),
              virtual_service("virtual-service", ["example.org"], ["gateway"], [rule(dest("a"), match=[prefix("/a")])]),
              virtual_service("virtual-service-case-insensitive", ["Example.org"], ["case-insensitive-gateway"],
                              [rule(dest("b"), match=[prefix("/b")])])),
       {"host": "example.org", "path": path}, ("ok", None, svc)) for path, svc in [("/a", "default/a"),
                                                                                   ("/b", "default/b")]],
    (f"TestGatewayHTTPRouteConfig {GWT}:2709 duplicate by wildcard should merge: *.org joins virtual host example.org",
     stream(app("a"), app("b"), gateway("gateway", server(80, "example.org")),
            virtual_service("virtual-service", ["example.org"], ["gateway"], [rule(dest("a"), match=[prefix("/a")])],
                            created=0),
            virtual_service("virtual-service-wildcard", ["*.org"], ["gateway"], [rule(dest("b"))], created=1)),
     {"host": "example.org", "path": "/b"}, ("ok", None, "default/b")),
    *[(f"TestGatewayHTTPRouteConfig {GWT}:2724 wildcard virtual service, {host}",
       stream(app("a"), gateway("gateway", server(80, "*")),
              virtual_service("virtual-service-wildcard", ["*.org"], ["gateway"], [rule(dest("a"))])),
       {"host": host}, expected) for host, expected in [("foo.org", ("ok", None, "default/a")),
                                                        ("example.com", ("not-found", 404, None))]],
    (f"TestGatewayHTTPRouteConfig {GWT}:2738 http redirection when the VirtualService only matches the HTTPS port: "
     "the redirect virtual host for Example.org is lower-cased",
     stream(app("example"), gateway("gateway-https", server(80, "Example.org", redirect=True),
                                    server(443, "example.org", protocol="HTTPS",
                                           tls={"mode": "SIMPLE", "credentialName": "example"})),
            virtual_service("virtual-service-https", ["example.org"], ["gateway-https"],
                            [rule(dest("example", 80), match=[{"port": 443}])])),
     {"host": "example.org"}, ("ok", 301, None)),
    # --- TestBuildGatewayListeners --------------------------------------------------------------------
    (f"TestBuildGatewayListeners {GWT}:2865 targetPort overrides service port: Gateway 80 listens on 8080",
     stream(app("a"), gateway("gateway", server(80, "*")), virtual_service("a", ["*"], ["gateway"], [rule(dest("a"))])),
     {}, ("ok", None, "default/a")),
    (f"TestBuildGatewayListeners {GWT}:2918 privileged port on unprivileged pod: skipped",
     course_operator(PORT_81) + "---\n" + stream(app("a"), gateway("gateway", server(81, "*")), VS_A),
     {"port": 81}, ("connection-refused", None, None)),
    (f"TestBuildGatewayListeners {GWT}:2968 privileged port on privileged pod: listener 81",
     course_operator(PORT_81, run_as_root=True) + "---\n" + stream(app("a"), gateway("gateway", server(81, "*")), VS_A),
     {"port": 81}, ("ok", None, "default/a")),
]


@pytest.mark.parametrize(("objects", "request_", "expected"), [c[1:] for c in TRACE_CASES],
                         ids=[c[0] for c in TRACE_CASES])
def test_trace_agrees_with_istiod(tmp_path, objects, request_, expected):
    assert outcome(trace(tmp_path, objects, **request_)) == expected


def _conflicts(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f["severity"], f["resources"][1], f["resources"][0]) for f in findings(result, "GW-CONFLICT")]


# (id, objects, expected GW-CONFLICT findings as (severity, winner Gateway, loser Gateway))
CONFLICT_CASES: list[tuple[str, str, list[tuple[str, str, str]]]] = [
    (f"TestGatewayConflicts {SIM}:632 the Gateway merged first wins (namespace breaks the tie)",
     stream(_tcp_gateway("gateway", "istio-system"), _tcp_gateway("gateway", "alpha"), TCP_BOOKINFO),
     [("error", "Gateway alpha/gateway", "Gateway istio-system/gateway")]),
    (f"TestGatewayConflicts {SIM}:753 TCP first: the HTTP server is rejected",
     stream(gateway("alpha", server(80, "foo.bar", protocol="TCP"), created=0),
            gateway("beta", server(80, "foo.bar"), created=0)),
     [("error", "Gateway default/alpha", "Gateway default/beta")]),
    (f"TestGatewayConflicts {SIM}:796 namespaced wildcards with distinct VirtualService hosts: only a warning "
     "(the engine names the overlap istiod merges without harm)",
     stream(app("echo", "ns-1"), app("echo", "ns-2"), gateway("alpha", server(80, "ns-1/*.example.com"), created=0),
            gateway("beta", server(80, "ns-2/*.example.com"), created=0),
            virtual_service("default", ["ns-1.example.com"], ["default/alpha"], [rule(dest("echo"))], ns="ns-1"),
            virtual_service("default", ["ns-2.example.com"], ["default/beta"], [rule(dest("echo"))], ns="ns-2")),
     [("warning", "Gateway default/alpha", "Gateway default/beta")]),
    (f"TestMergeGateways {MERGE}:115 two servers on the same port with distinct hosts: no conflict",
     stream(gateway("foo1", server(80, "foo.bar.com"), created=0), gateway("bar1", server(80, "bar.foo.com"),
                                                                         created=1)), []),
    (f"TestMergeGateways {MERGE}:165 tcp-http-server-config: the newer HTTP server is rejected",
     stream(gateway("foo4", server(80, "*", protocol="TCP"), created=0), gateway("foo3", server(80, "*"), created=1)),
     [("error", "Gateway default/foo4", "Gateway default/foo3")]),
    (f"TestMergeGateways {MERGE}:175 HTTP first: the newer TCP server is rejected",
     stream(gateway("foo3", server(80, "*"), created=0), gateway("foo4", server(80, "*", protocol="TCP"), created=1)),
     [("error", "Gateway default/foo3", "Gateway default/foo4")]),
    (f"TestMergeGateways {MERGE}:196 simple-passthrough: HTTPS *.example.com and TLS foo.example.com share port 443 "
     "by SNI (a wildcard overlap, not a rejection)",
     stream(gateway("foo-simple", server(443, "*.example.com", protocol="HTTPS",
                                         tls={"mode": "SIMPLE", "credentialName": "c"}), created=0),
            gateway("foo-passthrough", server(443, "foo.example.com", protocol="TLS", tls={"mode": "PASSTHROUGH"}),
                    created=1)),
     [("warning", "Gateway default/foo-simple", "Gateway default/foo-passthrough")]),
]


@pytest.mark.parametrize(("objects", "expected"), [c[1:] for c in CONFLICT_CASES], ids=[c[0] for c in CONFLICT_CASES])
def test_conflict_winner_agrees_with_istiod_merge_order(tmp_path, objects, expected):
    assert _conflicts(analyze(tmp_path, objects)) == expected


def test_tls_and_https_servers_share_a_port_without_rejection(tmp_path):
    """TestMergeGateways model/gateway_test.go:196 simple-passthrough: both servers are kept (two merged
    servers); a plain HTTP request to the port is closed, and no server is reported as rejected."""
    objects = CONFLICT_CASES[-1][1]
    result = trace(tmp_path, objects, port=443, host="foo.example.com")
    assert result["outcome"] == "connection-closed"
    assert not any("rejects" in s["result"] for s in result["steps"])


def test_gateways_on_80_and_8080_collide_on_the_resolved_listener(tmp_path):
    """TestBuildGatewayListeners core/gateway_test.go:2865: Service port 80 resolves to targetPort 8080
    (resolvePorts, pilot/pkg/model/gateway.go:482), so a Gateway on 80 and one on 8080 share listener 8080.
    Deliberately better than istioctl: IST0145 compares the declared ports and stays silent here."""
    objects = stream(app("a"), app("b"), gateway("old", server(80, "shop.example.com"), created=0),
                     gateway("new", server(8080, "shop.example.com"), created=1),
                     virtual_service("a", ["shop.example.com"], ["old"], [rule(dest("a"))]),
                     virtual_service("b", ["shop.example.com"], ["new"], [rule(dest("b"))]))
    assert _conflicts(analyze(tmp_path, objects)) == [("error", "Gateway default/old", "Gateway default/new")]
    assert outcome(trace(tmp_path, objects, host="shop.example.com")) == ("ok", None, "default/a")


@pytest.mark.parametrize(("declared", "expected", "finding"), [(80, ("ok", None, "default/web"), False),
                                                               (8080, ("no-cluster", 503, None), True)])
def test_omitted_destination_port_uses_the_gateway_server_port(tmp_path, declared, expected, finding):
    """GetDestinationCluster (route/route.go:362-368), as TestHTTPGateway "httpsRedirect on https" shows
    (gateway_simulation_test.go:558, expectation at :582: simpleRoute's host b has no port, the server's
    port is 443, the cluster is outbound|443||b.default). A multi-port Service without a port in the route
    gets the Gateway server's declared port. Deliberately better than istioctl: IST0112 warns on every
    omitted port; the engine reports only a fallback port the Service lacks, and the trace agrees."""
    objects = stream(app("web", ports=(80, 9090)), gateway("gw", server(declared, "*")),
                     virtual_service("web", ["*"], ["gw"], [rule(dest("web"))]))
    assert outcome(trace(tmp_path, objects)) == expected
    assert bool(findings(analyze(tmp_path, objects), "VS-DESTINATION-PORT-MISMATCH")) is finding


HTTPS_SERVER = server(443, "shop.example.com", protocol="HTTPS", tls={"mode": "SIMPLE", "credentialName": "shop"})


@pytest.mark.parametrize(("https_first", "expected", "conflicts"), [
    (True, ("ok", None, "default/a"), []),
    (False, ("ok", None, "default/a"), [("error", "Gateway default/plain", "Gateway default/secure")]),
])
def test_https_and_http_on_one_port_depend_on_which_came_first(tmp_path, https_first, expected, conflicts):
    """mergeGateways (pilot/pkg/model/gateway.go:296-300 and :339-347): a server joins the port's plain-text
    server only if both are HTTP, so an HTTPS server after an HTTP one is skipped ("conflict with existing
    server"); an HTTP server after an HTTPS one becomes the plain-text server beside the HTTPS filter chain.
    TestMergeGatewaysHttpsFirstBug (model/gateway_test.go:439) checks the same two orders with binds.
    A plain HTTP request reaches the HTTP routes either way."""
    objects = stream(app("a"), gateway("secure", HTTPS_SERVER, created=0 if https_first else 1),
                     gateway("plain", server(443, "shop.example.com"), created=1 if https_first else 0),
                     virtual_service("a", ["shop.example.com"], ["plain"], [rule(dest("a"))]))
    assert outcome(trace(tmp_path, objects, port=443, host="shop.example.com")) == expected
    assert _conflicts(analyze(tmp_path, objects)) == conflicts
