"""Gateway API attachment and status, through ``analyze -o json``, against istiod's own strings.

Each case is our own YAML translating a case of Istio 1.30.3's Gateway API conversion tests
(pilot/pkg/config/kube/gateway/testdata/route-binding.yaml, invalid.yaml and their .status.yaml.golden)
or of the Gateway API v1.5.1 conformance suite (conformance/tests/httproute-*.go); every reason and
message is the one istiod writes, cited by file:line of pilot/pkg/config/kube/gateway/ at 1.30.3.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli import analyze, codes, findings

GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default, annotations: {networking.istio.io/service-type: ClusterIP}}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: "*.example.com"}
  - {name: other, port: 8080, protocol: HTTP, hostname: "foo.example.com", allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps, labels: {team: a}}
---
"""


def route(name: str = "r", ns: str = "default", parent: str = "{name: gw, namespace: default}",
          hostnames: str = '["a.example.com"]', backends: str = "[{name: productpage, port: 9080}]") -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {ns}}}
spec:
  parentRefs: [{parent}]
  hostnames: {hostnames}
  rules: [{{backendRefs: {backends}}}]
"""


def not_accepted(tmp: Path, text: str) -> list[dict]:
    return findings(analyze(tmp, GATEWAY + text), "GWAPI-ROUTE-NOT-ACCEPTED")


def test_accepted_route_has_no_finding(tmp_path: Path) -> None:
    assert not [c for c in codes(analyze(tmp_path, GATEWAY + route())) if c.startswith("GWAPI")]


@pytest.mark.parametrize("parent, hostnames, reason, message", [
    # conversion.go:644-650 "port %v not found" (route-binding.status.yaml.golden, invalid-port)
    ("{name: gw, namespace: default, port: 81}", '["a.example.com"]', "NoMatchingParent", "port 81 not found"),
    # conversion.go:651-656 'sectionName %q not found'; both listeners say so, joined with "; " (conditions.go:128-133)
    ("{name: gw, namespace: default, sectionName: nope}", '["a.example.com"]', "NoMatchingParent",
     'sectionName "nope" not found; sectionName "nope" not found'),
    # conversion.go:704-709: no route hostname intersects either listener; equal rank -> joined
    ("{name: gw, namespace: default}", '["b.other.com"]', "NoMatchingListenerHostname",
     'no hostnames matched parent hostname "*.example.com"; no hostnames matched parent hostname "foo.example.com"'),
    # ranking conditions.go:101-125: the http listener says NoMatchingParent (section), no better reason exists
    ("{name: gw, namespace: default, sectionName: other}", '["a.example.com"]', "NoMatchingListenerHostname",
     'no hostnames matched parent hostname "foo.example.com"'),
])
def test_parent_reasons(tmp_path: Path, parent: str, hostnames: str, reason: str, message: str) -> None:
    [f] = not_accepted(tmp_path, route(parent=parent, hostnames=hostnames))
    assert f["reason"] == reason and message in f["message"]
    assert "HTTPRoute default/r parentRef default/gw" in f["message"]


def test_namespace_not_allowed_outranks_no_hostname(tmp_path: Path) -> None:
    """route-binding.yaml 'same-namespace-invalid': a route from another namespace whose hostname matches the
    From-Same listener gets NotAllowedByListeners (rank 1 beats NoMatchingListenerHostname on the other listener,
    conditions.go:101-125); message conversion.go:696-701."""
    [f] = not_accepted(tmp_path, route(ns="apps"))
    assert f["reason"] == "NotAllowedByListeners"
    assert 'hostnames matched parent hostname "*.example.com", but namespace "apps" is not allowed by the parent' \
        in f["message"]


def test_from_all_listener_accepts_another_namespace(tmp_path: Path) -> None:
    """conformance HTTPRouteCrossNamespace-like: listener 'other' allows All; foo.example.com matches it."""
    assert not not_accepted(tmp_path, route(ns="apps", hostnames='["foo.example.com"]',
                                            backends="[{name: productpage, namespace: default, port: 9080}]"))


def test_selector_listener_uses_namespace_labels(tmp_path: Path) -> None:
    """conversion.go:2480-2511: from Selector admits the namespaces whose labels match now."""
    sel = GATEWAY.replace('hostname: "*.example.com"}', 'hostname: "*.example.com", allowedRoutes: {namespaces: '
                          '{from: Selector, selector: {matchLabels: {team: a}}}}}')
    data = analyze(tmp_path, sel + route(ns="apps", backends="[{name: ratings, namespace: default, port: 9080}]"))
    assert not findings(data, "GWAPI-ROUTE-NOT-ACCEPTED")
    data = analyze(tmp_path, sel.replace("team: a}}}}", "team: b}}}}") + route(ns="apps"))
    assert [f["reason"] for f in findings(data, "GWAPI-ROUTE-NOT-ACCEPTED")] == ["NotAllowedByListeners"]


def test_missing_gateway_gets_no_status_entry(tmp_path: Path) -> None:
    """conversion.go:738-773: a parentRef to a Gateway istiod does not handle adds no entry (and no finding)."""
    assert not not_accepted(tmp_path, route(parent="{name: nope}"))


@pytest.mark.parametrize("backends, reason, message", [
    # conversion.go:1112-1115 backend(%s) not found (conformance HTTPRouteInvalidNonExistentBackendRef)
    ("[{name: nothere, port: 80}]", "BackendNotFound", "backend(nothere.default.svc.cluster.local) not found"),
    # conversion.go:1091-1099 (conformance HTTPRouteInvalidCrossNamespaceBackendRef)
    ("[{name: productpage, namespace: istio-system, port: 9080}]", "RefNotPermitted",
     'backendRef productpage/istio-system not accessible to a HTTPRoute in namespace "default" '
     "(missing a ReferenceGrant?)"),
    # conversion.go:1197-1201 (conformance HTTPRouteInvalidBackendRefUnknownKind)
    ("[{group: unknown.example.com, kind: GcsBucket, name: b}]", "InvalidKind",
     'referencing unsupported backendRef: group "unknown.example.com" kind "GcsBucket"'),
    # invalid.yaml invalid-backendRef-mixed: the last invalid backend wins (route_collections.go:641-656)
    ("[{name: nothere, port: 80}, {group: unknown.example.com, kind: GcsBucket, name: b}]", "InvalidKind",
     "GcsBucket"),
])
def test_backend_reasons(tmp_path: Path, backends: str, reason: str, message: str) -> None:
    data = analyze(tmp_path, GATEWAY + route(backends=backends))
    [f] = findings(data, "GWAPI-BACKEND-UNRESOLVED")
    assert f["reason"] == reason and message in f["message"] and "500" in f["message"]
    assert not findings(data, "GWAPI-ROUTE-NOT-ACCEPTED"), "backend errors never change Accepted (conditions.go:148)"


def test_reference_grant_permits_the_cross_namespace_backend(tmp_path: Path) -> None:
    grant = """---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow, namespace: istio-system}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
  to: [{group: "", kind: Service}]
"""
    text = GATEWAY + route(backends="[{name: istiod, namespace: istio-system, port: 15010}]") + grant
    assert not findings(analyze(tmp_path, text), "GWAPI-BACKEND-UNRESOLVED")
    wrong_ns = grant.replace("namespace: default}", "namespace: apps}")
    text = GATEWAY + route(backends="[{name: istiod, namespace: istio-system, port: 15010}]") + wrong_ns
    assert [f["reason"] for f in findings(analyze(tmp_path, text), "GWAPI-BACKEND-UNRESOLVED")] == ["RefNotPermitted"]


def test_load_balancer_on_kind_is_not_programmed(tmp_path: Path) -> None:
    """context.go:107-117 + conversion.go:1912-1922: LB Service without address -> AddressNotAssigned."""
    text = GATEWAY.replace("annotations: {networking.istio.io/service-type: ClusterIP}", "annotations: {}")
    [f] = findings(analyze(tmp_path, text), "GWAPI-NOT-PROGRAMMED")
    assert f["reason"] == "AddressNotAssigned"
    assert ('Assigned to service(s) gw-istio.default.svc.cluster.local:80 and gw-istio.default.svc.cluster.local:8080,'
            ' but failed to assign to all requested addresses: address pending for hostname '
            '"gw-istio.default.svc.cluster.local"') in f["message"]
    assert "networking.istio.io/service-type: ClusterIP" in f["hint"] and "port-forward" in f["hint"]


def test_unknown_class_is_ignored_by_istiod(tmp_path: Path) -> None:
    text = GATEWAY.replace("gatewayClassName: istio", "gatewayClassName: istio-gateway")
    data = analyze(tmp_path, text + route())
    [f] = findings(data, "GWAPI-CLASS-UNKNOWN")
    assert "istio-gateway" in f["message"] and "Pending" in f["message"]
    assert not findings(data, "GWAPI-ROUTE-NOT-ACCEPTED"), "no status entry for a parent istiod does not handle"


def test_classic_gateway_selecting_gateway_api_pods(tmp_path: Path) -> None:
    classic = """---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: classic, namespace: default}
spec:
  selector: {gateway.networking.k8s.io/gateway-name: gw}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
"""
    [f] = findings(analyze(tmp_path, GATEWAY + classic), "GWAPI-SHARED-PODS")
    assert "default/classic" in f["message"] and "default/gw" in f["message"]


def test_predicted_service_ports_and_labels(tmp_path: Path) -> None:
    """deploymentcontroller.go:911-950 (1.30.3): status-port 15021 then one port per distinct listener port;
    kube-gateway.yaml L331-336 labels; type from networking.istio.io/service-type."""
    from graders.sources import load_state

    p = tmp_path / "gw.yaml"
    p.write_text(GATEWAY)
    svc = load_state([str(p)]).service("default", "gw-istio")
    assert svc is not None and svc.type == "ClusterIP"
    assert [(sp.name, sp.port, sp.target_port) for sp in svc.ports] == [
        ("status-port", 15021, 15021), ("http", 80, 80), ("other", 8080, 8080)]
    assert dict(svc.meta.labels) == {"gateway.networking.k8s.io/gateway-name": "gw",
                                     "gateway.networking.k8s.io/gateway-class-name": "istio"}
