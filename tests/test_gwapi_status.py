"""Every status the Gateway API engine predicts, against the string istiod writes (Istio 1.30.3 source,
pilot/pkg/config/kube/gateway/ unless said otherwise; gatewaycommon/context.go for address warnings).
The conformance files (tests/conformance/test_gwapi_*.py) cover the route and backend reasons through the
CLI; this file covers the rest on the pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from graders.gwapi.attach import (
    INVALID_DESTINATION,
    backend_result,
    gateway_status,
    parent_results,
    route_backend_error,
)
from graders.gwapi.objects import BackendRef
from graders.sources import load_state
from graders.state import State


def gateway(listeners: list[dict], annotations: dict | None = None, addresses: list | None = None) -> dict:
    spec: dict = {"gatewayClassName": "istio", "listeners": listeners}
    if addresses:
        spec["addresses"] = addresses
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "default", "annotations": annotations or {}}, "spec": spec}


def route(**spec: object) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "ratings", "port": 9080}]}],
                     **spec}}


def state_of(tmp: Path, *objs: dict, baseline: bool = True) -> State:
    p = tmp / "x.yaml"
    p.write_text(yaml.safe_dump_all(objs))
    return load_state([str(p)], baseline=baseline)


HTTP = {"name": "http", "port": 80, "protocol": "HTTP"}


def test_bound_to_several_listeners(tmp_path: Path) -> None:
    """conditions.go:144-147: "Route was valid, bound to %d parents" when one parentRef binds N>1 listeners."""
    st = state_of(tmp_path, gateway([HTTP, {"name": "alt", "port": 8080, "protocol": "HTTP"}]), route())
    [res] = parent_results(st, st.http_routes[0])
    assert res.accepted and res.message == "Route was valid, bound to 2 parents"
    assert gateway_status(st, st.api_gateways[0]).attached == {"http": 1, "alt": 1}


def test_attached_routes_count_backend_errors_too(tmp_path: Path) -> None:
    """invalid.status.yaml.golden: attachedRoutes counts accepted routes whatever their backends."""
    broken = route(rules=[{"backendRefs": [{"name": "nothere", "port": 80}]}])
    st = state_of(tmp_path, gateway([HTTP]), broken)
    assert gateway_status(st, st.api_gateways[0]).attached == {"http": 1}


def test_programmed_when_cluster_ip_and_ready(tmp_path: Path) -> None:
    """conversion.go:1901-1904: "Resource programmed, assigned to service(s) %s"."""
    st = state_of(tmp_path, gateway([HTTP], {"networking.istio.io/service-type": "ClusterIP"}))
    assert gateway_status(st, st.api_gateways[0]).programmed == (
        "True", "Programmed", "Resource programmed, assigned to service(s) gw-istio.default.svc.cluster.local:80")


def test_manual_mode_with_a_service_in_another_namespace(tmp_path: Path) -> None:
    """gatewaycommon/context.go:88-96 + conversion.go:1918-1924: a hostname found only elsewhere is a hard
    warning -> AddressNotUsable, "Failed to assign to any requested addresses: ..." (nothing internal)."""
    fqdn = "istio-ingressgateway.istio-system.svc.cluster.local"
    gw = gateway([HTTP], addresses=[{"type": "Hostname", "value": fqdn}])
    st = state_of(tmp_path, gw)
    assert st.service("default", "gw-istio") is None, "manual mode: istiod deploys nothing"
    status, reason, message = gateway_status(st, st.api_gateways[0]).programmed
    assert (status, reason) == ("False", "AddressNotUsable")
    assert message == ('Failed to assign to any requested addresses: hostname '
                       '"istio-ingressgateway.istio-system.svc.cluster.local" not found in namespace "default", but '
                       'it was found in namespace(s) "istio-system"')


def test_no_ready_pod_is_address_not_assigned(tmp_path: Path) -> None:
    """context.go:119-121 "no instances found for hostname %q" is a soft warning."""
    gw = gateway([HTTP], {"networking.istio.io/service-type": "ClusterIP"})
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump(gw))
    st = load_state([str(p)])
    pods = tuple(pd for pd in st.pods if not pd.meta.name.startswith("gw-istio"))
    from dataclasses import replace

    st = replace(st, pods=pods)
    assert gateway_status(st, st.api_gateways[0]).programmed == (
        "False", "AddressNotAssigned", 'Failed to assign to any requested addresses: no instances found for '
        'hostname "gw-istio.default.svc.cluster.local"')


@pytest.mark.parametrize("protocol, message", [
    # conversion.go:2143-2170 listenerProtocolToIstio
    ("UDP", 'protocol "UDP" is unsupported'),
    ("http", 'protocol "http" is unsupported. hint: "HTTP" (uppercase) may be supported'),
    ("TCP", 'protocol "TCP" is supported, but only when PILOT_ENABLE_ALPHA_GATEWAY_API=true is configured'),
])
def test_listener_unsupported_protocol(tmp_path: Path, protocol: str, message: str) -> None:
    st = state_of(tmp_path, gateway([{"name": "l", "port": 80, "protocol": protocol}]))
    assert gateway_status(st, st.api_gateways[0]).listener_problems == {
        "l": ("Accepted", "UnsupportedProtocol", message)}


def test_listener_invalid_route_kinds(tmp_path: Path) -> None:
    """conditions.go:362-368 "Invalid route kinds" when allowedRoutes.kinds lists an unsupported kind; and an
    HTTPRoute is then not allowed: conversion.go:714-726 "kind %v is not allowed"."""
    ln = {**HTTP, "allowedRoutes": {"kinds": [{"kind": "TCPRoute"}]}}
    st = state_of(tmp_path, gateway([ln]), route())
    assert gateway_status(st, st.api_gateways[0]).listener_problems == {
        "http": ("ResolvedRefs", "InvalidRouteKinds", "Invalid route kinds")}
    [res] = parent_results(st, st.http_routes[0])
    assert (res.reason, res.message) == ("NotAllowedByListeners",
                                         "kind gateway.networking.k8s.io/v1/HTTPRoute is not allowed")


def test_hostname_backend_is_a_hard_error(tmp_path: Path) -> None:
    """conversion.go:1107-1109: a Service name with a dot is InvalidDestination, and the route produces nothing."""
    st = state_of(tmp_path, gateway([HTTP]), route(rules=[{"backendRefs": [
        {"name": "ratings.default.svc.cluster.local", "port": 9080}]}]))
    err = route_backend_error(st, st.http_routes[0])
    assert err is not None and err.reason == INVALID_DESTINATION
    assert err.message == "service name invalid; the name of the Service must be used, not the hostname."


def test_reference_grant_is_checked_before_kind(tmp_path: Path) -> None:
    """conversion.go:1091-1099 precede the kind switch: a cross-namespace unknown kind is RefNotPermitted."""
    st = state_of(tmp_path, gateway([HTTP]), route())
    res = backend_result(st, st.http_routes[0], BackendRef("b", "other", "x.io", "Bucket", None))
    assert res.reason == "RefNotPermitted"


def test_other_controllers_class_is_not_istios(tmp_path: Path) -> None:
    """A GatewayClass with another controllerName: istiod neither deploys nor writes status for it."""
    gc = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "other"},
          "spec": {"controllerName": "example.com/gateway"}}
    gw = gateway([HTTP])
    gw["spec"]["gatewayClassName"] = "other"
    st = state_of(tmp_path, gc, gw, route())
    assert st.service("default", "gw-other") is None
    assert parent_results(st, st.http_routes[0]) == []


def test_custom_class_with_istios_controller_uses_its_name(tmp_path: Path) -> None:
    """gatewaycommon/testdata/custom-class.yaml: names follow the class name, <gw>-<class>."""
    gc = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "mine"},
          "spec": {"controllerName": "istio.io/gateway-controller"}}
    gw = gateway([HTTP])
    gw["spec"]["gatewayClassName"] = "mine"
    st = state_of(tmp_path, gc, gw)
    assert st.service("default", "gw-mine") is not None


def test_unsupported_filter_drops_the_whole_route(tmp_path: Path) -> None:
    """conversion.go:177-181: an ExtensionRef filter is InvalidFilter 'unsupported filter type %q', a hard error:
    the route produces no routes (route_collections.go:641-650), so its requests meet 404."""
    from graders.trace import Request, trace

    rules = [{"filters": [{"type": "ExtensionRef", "extensionRef": {"group": "x.io", "kind": "F", "name": "f"}}],
              "backendRefs": [{"name": "ratings", "port": 9080}]}]
    st = state_of(tmp_path, gateway([HTTP]), route(rules=rules))
    err = route_backend_error(st, st.http_routes[0])
    assert err is not None and (err.reason, err.message) == ("InvalidFilter", 'unsupported filter type "ExtensionRef"')
    t = trace(st, Request("default/gw-istio", 80, "x", "/"))
    assert (t.outcome, t.http_status) == ("not-found", 404)
    st = state_of(tmp_path, gateway([HTTP]), route())
    assert trace(st, Request("default/gw-istio", 80, "x", "/")).outcome == "ok"


def test_missing_port_is_a_hard_error_even_for_a_missing_service(tmp_path: Path) -> None:
    """conversion.go:1203-1206 'port is required in backendRef' comes after the lookup and wins over it."""
    st = state_of(tmp_path, gateway([HTTP]), route(rules=[{"backendRefs": [{"name": "nothere"}]}]))
    err = route_backend_error(st, st.http_routes[0])
    assert err is not None and (err.reason, err.message) == ("InvalidDestination", "port is required in backendRef")


def test_manual_mode_on_a_workload_port_hints_the_service_port(tmp_path: Path) -> None:
    """context.go:131-135: a listener on the pod port 8080 of istio-ingressgateway (Service port 80 -> 8080)
    gets AddressNotUsable with istiod's hint (sets.SortedList printed with %v: [80])."""
    gw = gateway([{"name": "http", "port": 8080, "protocol": "HTTP"}],
                 addresses=[{"type": "Hostname", "value": "istio-ingressgateway"}])
    gw["metadata"]["namespace"] = "istio-system"
    st = state_of(tmp_path, gw)
    status, reason, message = gateway_status(st, st.api_gateways[0]).programmed
    assert (status, reason) == ("False", "AddressNotUsable")
    assert message.endswith('port 8080 not found for hostname "istio-ingressgateway.istio-system.svc.cluster.local" '
                            "(hint: the service port should be specified, not the workload port. Did you mean one "
                            "of these ports: [80]?)")
