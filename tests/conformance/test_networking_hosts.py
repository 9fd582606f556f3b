"""Conformance: which VirtualService hosts bind to which Gateway hosts, and what exportTo lets a gateway
see, translated from Istio 1.30.3's own tests.

Sources (each case id names the test, file and line):
- TestNamesIntersection, TestNamesForNamespace: pkg/config/host/names_test.go
- TestNameMatches: pkg/config/host/name_test.go
- TestVirtualServiceWithExportTo: pilot/pkg/model/push_context_test.go:2935

istiod builds one virtual host per name in the intersection of a Gateway server's hosts (after its
namespace filter) and a VirtualService's hosts (gateway.go:440-489), so the intersection is observable:
a request for a name in it is routed through the virtual host the trace names, any other gets 404.
"""

from __future__ import annotations

from typing import Any

import pytest
from cli import analyze, findings, trace
from networking import app, dest, gateway, outcome, rule, server, service_entry, stream, virtual_service

NAMES = "pkg/config/host/names_test.go"
NAME = "pkg/config/host/name_test.go"
PUSH = "pilot/pkg/model/push_context_test.go"


def bound(gateway_hosts: list[str], vs_hosts: list[str], vs_ns: str = "default") -> str:
    return stream(app("a", vs_ns), gateway("gw", server(80, *gateway_hosts)),
                  virtual_service("vs", vs_hosts, ["default/gw"], [rule(dest("a"))], ns=vs_ns))


def selected_domain(result: dict[str, Any]) -> str | None:
    """The virtual host the trace selected, or None when the request got no route."""
    if result["outcome"] != "ok":
        return None
    step = next(s for s in result["steps"] if s["step"] == "virtual-host")
    return step["result"].split("selects virtual host '", 1)[1].split("'", 1)[0]


# (id, gateway hosts, VirtualService hosts, request Host, expected virtual-host domain or None for 404)
INTERSECTION: list[tuple[str, list[str], list[str], str, str | None]] = [
    (f"TestNamesIntersection {NAMES}:31 disjoint names", ["foo.com"], ["bar.com"], "bar.com", None),
    (f"TestNamesIntersection {NAMES}:36 one shared name", ["foo.com", "bar.com"], ["bar.com"], "bar.com", "bar.com"),
    (f"TestNamesIntersection {NAMES}:36 the other name is not bound", ["foo.com", "bar.com"], ["bar.com"], "foo.com",
     None),
    (f"TestNamesIntersection {NAMES}:41 names under a wildcard", ["foo.com", "bar.com"], ["*.com"], "foo.com",
     "foo.com"),
    (f"TestNamesIntersection {NAMES}:41 the wildcard itself is not a domain", ["foo.com", "bar.com"], ["*.com"],
     "baz.com", None),
    (f"TestNamesIntersection {NAMES}:46 a wildcard Gateway host keeps the VirtualService's names", ["*.com"],
     ["foo.com", "bar.com"], "bar.com", "bar.com"),
    (f"TestNamesIntersection {NAMES}:51 mixed wildcards", ["foo.com", "*.net"], ["*.com", "bar.net"], "bar.net",
     "bar.net"),
    (f"TestNamesIntersection {NAMES}:56 the narrower wildcard wins", ["foo.com", "*.net"], ["*.bar.net"],
     "x.bar.net", "*.bar.net"),
    (f"TestNamesIntersection {NAMES}:56 names outside the narrower wildcard are not bound", ["foo.com", "*.net"],
     ["*.bar.net"], "x.net", None),
    (f"TestNamesIntersection {NAMES}:61 * against names", ["foo.com", "bar.net"], ["*"], "bar.net", "bar.net"),
    (f"TestNamesIntersection {NAMES}:76 * and a name against the name", ["*", "foo.com"], ["foo.com"], "foo.com",
     "foo.com"),
    (f"TestNamesIntersection {NAMES}:86 case-sensitive: foo.com and Foo.com share nothing", ["foo.com"], ["Foo.com"],
     "foo.com", None),
    (f"TestNamesIntersection {NAMES}:86 the shared name is lower-cased only afterwards (gateway.go:489)", ["*"],
     ["Foo.com"], "foo.com", "foo.com"),
    (f"TestNameMatches {NAME}:49 domain does not match subdomain", ["foo.com"], ["bar.foo.com"], "bar.foo.com", None),
    (f"TestNameMatches {NAME}:66 wildcard matches subdomains", ["*.foo.com"], ["bar.foo.com"], "bar.foo.com",
     "bar.foo.com"),
    (f"TestNameMatches {NAME}:76 wildcarded domain matches wildcarded subdomain", ["*.com"], ["*.foo.com"],
     "x.foo.com", "*.foo.com"),
    (f"TestNameMatches {NAME}:77 wildcarded sub-domain does not match domain", ["foo.com"], ["*.foo.com"], "foo.com",
     None),
    (f"TestNameMatches {NAME}:82 long wildcard matches short wildcard", ["*.baz"], ["*.foo.bar.baz"], "x.foo.bar.baz",
     "*.foo.bar.baz"),
    (f"TestNameMatches {NAME}:83 long name matches short wildcard", ["*.baz"], ["foo.bar.baz"], "foo.bar.baz",
     "foo.bar.baz"),
    (f"TestNameMatches {NAME}:31 mixed case wildcard: a.facebook.com vs *.facebook.COM", ["*.facebook.COM"],
     ["a.facebook.com"], "a.facebook.com", None),
]


@pytest.mark.parametrize(("gw_hosts", "vs_hosts", "host", "domain"), [c[1:] for c in INTERSECTION],
                         ids=[c[0] for c in INTERSECTION])
def test_host_intersection_agrees_with_istiod(tmp_path, gw_hosts, vs_hosts, host, domain):
    assert selected_domain(trace(tmp_path, bound(gw_hosts, vs_hosts), host=host)) == domain


# (id, Gateway hosts, VirtualService namespace, request Host, routed?)
FOR_NAMESPACE: list[tuple[str, list[str], str, str, bool]] = [
    (f"TestNamesForNamespace {NAMES}:109 ns1/foo.com binds a VirtualService in ns1", ["ns1/foo.com", "ns2/bar.com"],
     "ns1", "foo.com", True),
    (f"TestNamesForNamespace {NAMES}:109 ns2/bar.com does not", ["ns1/foo.com", "ns2/bar.com"], "ns1", "bar.com",
     False),
    (f"TestNamesForNamespace {NAMES}:114 neither binds ns3", ["ns1/foo.com", "ns2/bar.com"], "ns3", "foo.com", False),
    (f"TestNamesForNamespace {NAMES}:124 */bar.com binds every namespace", ["ns1/foo.com", "*/bar.com"], "ns3",
     "bar.com", True),
    (f"TestNamesForNamespace {NAMES}:134 a host without prefix binds every namespace", ["foo.com", "ns2/bar.com"],
     "ns3", "foo.com", True),
    ("sanitizeServerHostNamespace pilot/pkg/model/gateway.go:654 ./bar.com means the Gateway's namespace",
     ["./bar.com"], "default", "bar.com", True),
]


@pytest.mark.parametrize(("gw_hosts", "vs_ns", "host", "routed"), [c[1:] for c in FOR_NAMESPACE],
                         ids=[c[0] for c in FOR_NAMESPACE])
def test_namespaced_gateway_hosts_agree_with_istiod(tmp_path, gw_hosts, vs_ns, host, routed):
    vs_hosts = ["foo.com", "bar.com"]
    assert (trace(tmp_path, bound(gw_hosts, vs_hosts, vs_ns), host=host)["outcome"] == "ok") is routed


def _exported_vs(name: str, ns: str, host: str, export_to: list[str], created: int, backend: str) -> dict[str, Any]:
    return virtual_service(name, [host], ["default/gateway"], [rule(dest(backend))], ns=ns, export_to=export_to,
                           created=created)


# The gateway pods run in istio-system; TestVirtualServiceWithExportTo asks VirtualServicesForGateway for a
# proxy namespace, here the namespace of the pod the request meets.
EXPORT: list[tuple[str, str, list[str], bool]] = [
    (f"TestVirtualServiceWithExportTo {PUSH}:3075 rule2Gw (exported to test2, ns1, test1) is not seen from a "
     "namespace it does not name", "test2", ["test2", "ns1", "test1"], False),
    (f"TestVirtualServiceWithExportTo {PUSH}:3075 rule3Gw (exported to *) is seen from every namespace", "test3",
     ["test1", "test2", "*"], True),
    (f"TestVirtualServiceWithExportTo {PUSH}:3070 a VirtualService exported to the gateway's namespace by name",
     "test2", ["test2", "istio-system"], True),
    (f"TestVirtualServiceWithExportTo {PUSH}:3065 '.' in the gateway's own namespace is private to it",
     "istio-system", ["."], True),
    (f"TestVirtualServiceWithExportTo {PUSH}:3075 '.' elsewhere hides it from the gateway", "default", ["."], False),
    ("initVirtualServices pilot/pkg/model/push_context.go:1793 '~' exports to no namespace", "istio-system", ["~"],
     False),
]


@pytest.mark.parametrize(("ns", "export_to", "seen"), [c[1:] for c in EXPORT], ids=[c[0] for c in EXPORT])
def test_virtual_service_export_to_agrees_with_istiod(tmp_path, ns, export_to, seen):
    objects = stream(app("a", ns), gateway("gateway", server(80, "*")),
                     _exported_vs("rule", ns, "rule.com", export_to, 1, "a"))
    assert (trace(tmp_path, objects, host="rule.com")["outcome"] == "ok") is seen


def test_exported_virtual_services_come_before_public_ones_whatever_their_age(tmp_path):
    """TestVirtualServiceWithExportTo push_context_test.go:3060 (proxy test1: rule2gw before rule3gw) and
    VirtualServicesForGateway (push_context.go:1113): private, then exported to the proxy's namespace, then
    public. The newer exported VirtualService's route comes first and wins the shared path."""
    objects = stream(app("a", "test2"), app("b", "test3"), gateway("gateway", server(80, "*")),
                     _exported_vs("rule3gw", "test3", "shared.com", ["test1", "test2", "*"], 1, "b"),
                     _exported_vs("rule2gw", "test2", "shared.com", ["test2", "istio-system"], 2, "a"))
    assert outcome(trace(tmp_path, objects, host="shared.com")) == ("ok", None, "test2/a")


def _gateway_in(ns: str) -> list[dict[str, Any]]:
    """A second ingress gateway whose pods run in ``ns`` (the shape the lab's own gateway has)."""
    labels = {"istio": f"gw-{ns}"}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gw", "namespace": ns},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "istio-proxy", "image": "auto",
                                                        "args": ["proxy", "router"],
                                                        "ports": [{"containerPort": 8080}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gw", "namespace": ns},
         "spec": {"type": "NodePort", "selector": labels,
                  "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31080}]}},
        gateway("gw", server(80, "*"), ns=ns, selector=f"gw-{ns}"),
    ]


@pytest.mark.parametrize(("gateway_service", "expected"), [
    ("team/gw", ("ok", None, "team/web")),
    ("istio-system/istio-ingressgateway", ("no-cluster", 503, None)),
])
def test_service_visibility_is_decided_by_the_gateway_pods_namespace(tmp_path, gateway_service, expected):
    """DefaultSidecarScopeForGateway (pilot/pkg/model/sidecar.go:257) gives a gateway the services exported to
    its pods' namespace (IsServiceVisible, push_context.go:1089): a Service exported to '.' in team is seen by
    a gateway whose pods run in team, not by the istio-system one."""
    objects = stream(app("web", "team", export_to="."), _gateway_in("team"),
                     gateway("shared", server(80, "*"), ns="team", selector="ingressgateway"),
                     virtual_service("web", ["*"], ["team/gw", "team/shared"], [rule(dest("web", 80))], ns="team"))
    assert outcome(trace(tmp_path, objects, gateway=gateway_service)) == expected


def test_not_exported_destination_is_a_finding_naming_the_gateway_namespace(tmp_path):
    """The engine does better than istioctl here: IST0101 checks a destination's visibility from the
    VirtualService's namespace (pkg/config/analysis/analyzers/util/service_lookup.go), so a Service exported
    to '.' next to its VirtualService passes; istiod resolves it from the gateway pod's namespace
    (sidecar.go:257), where it does not exist, and the trace and analyze follow istiod."""
    objects = stream(app("web", export_to="."), gateway("gw", server(80, "*")),
                     virtual_service("web", ["*"], ["gw"], [rule(dest("web", 80))]),
                     service_entry("ext", ["ext.example.com"], ns="test", export_to=["."]),
                     virtual_service("ext", ["ext.example.com"], ["default/gw"],
                                     [rule(dest("ext.example.com", 80))], ns="test"))
    found = {tuple(f["resources"][:2]) for f in findings(analyze(tmp_path, objects), "VS-DESTINATION-NOT-EXPORTED")}
    assert found == {("VirtualService default/web", "Service default/web"),
                     ("VirtualService test/ext", "ServiceEntry test/ext")}


@pytest.mark.parametrize(("gw_host", "vs_ns", "binds"), [
    ("a.default.svc.cluster.local", "default", True),
    ("*.default.svc.cluster.local", "default", True),
    ("a.prod.svc.cluster.local", "default", False),
])
def test_short_virtual_service_hosts_bind_expanded_in_trace_and_analyze_alike(tmp_path, gw_host, vs_ns, binds):
    """ResolveVirtualServiceShortnames (pilot/pkg/model/virtualservice.go:128) expands ``hosts: [a]`` to
    a.<VirtualService namespace>.svc.cluster.local before pickMatchingGatewayHosts (gateway.go:1052) binds
    it: the request is routed exactly when VS-HOST-NOT-IN-GATEWAY stays quiet."""
    objects = bound([gw_host], ["a"], vs_ns)
    routed = trace(tmp_path, objects, host=gw_host.replace("*", "a"))["outcome"] == "ok"
    reported = bool(findings(analyze(tmp_path, objects, baseline=False), "VS-HOST-NOT-IN-GATEWAY"))
    assert (routed, reported) == (binds, not binds)


@pytest.mark.parametrize(("se_host", "destination", "declared"), [
    ("HTTPBin.org", "httpbin.org", False), ("HTTPBin.org", "HTTPBin.org", True),
    ("*.Example.com", "api.example.com", False), ("*.example.com", "api.example.com", True),
])
def test_service_entry_hosts_are_case_sensitive_in_trace_and_analyze_alike(tmp_path, se_host, destination, declared):
    """A route's cluster is named after its destination as written (GetDestinationCluster, pilot/pkg/networking/
    core/route/route.go:356) and istioctl looks a ServiceEntry host up as a Go string (GetDestinationHost,
    pkg/config/analysis/analyzers/util/service_lookup.go:116, :157): another case is another host, 503 NC."""
    objects = stream(gateway("gw", server(80, "*")), service_entry("ext", [se_host]),
                     virtual_service("ext", ["*"], ["default/gw"], [rule(dest(destination, 80))]))
    result = trace(tmp_path, objects, host="any.example.net")
    assert (result["outcome"] == "ok") is declared, result["outcome"]
    missing = findings(analyze(tmp_path, objects, baseline=False), "VS-DESTINATION-NOT-FOUND")
    assert bool(missing) is not declared
