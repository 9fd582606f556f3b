"""Findings for Kubernetes Gateway API objects: the status istiod would write, predicted from objects.

istioctl analyze only repeats the status istiod already wrote (IST0171 NegativeConditionStatus,
pkg/config/analysis/analyzers/conditions/conditions.go), so it finds nothing in files; these findings
predict that status (graders/gwapi/attach.py) with the reason strings istiod uses. In live and snapshot
mode, where istiod's written status is read, the finding also says when the written status disagrees
and then trusts istiod's (the prediction may lag or the model may be wrong).
"""

from __future__ import annotations

from collections.abc import Iterator

from graders import versions
from graders.analyzers import Analyzer
from graders.analyzers.gateway_selector import fmt_labels
from graders.catalogue import Finding, finding
from graders.gwapi import ISTIO_CONTROLLER, PORT_FORWARD_LOCAL
from graders.gwapi.attach import (
    BACKEND_NOT_FOUND,
    INVALID_KIND,
    NO_HOSTNAME,
    NO_PARENT,
    NOT_ALLOWED,
    REF_NOT_PERMITTED,
    gateway_status,
    parent_results,
    route_backend_error,
)
from graders.gwapi.deploy import (
    MANAGED_LABEL,
    NAME_LABEL,
    SERVICE_TYPE_ANNOTATION,
    controller_of,
    deployment_name,
    is_istio_managed_class,
    manual,
    service_ports,
    service_type,
)
from graders.gwapi.objects import ApiGateway, HTTPRoute, RouteParentStatus
from graders.state import State

_ROUTE_FIX = {
    NOT_ALLOWED: "Allow the route's namespace on the listener (spec.listeners[].allowedRoutes.namespaces.from: All, "
                 "or Selector with a label the namespace has), or move the HTTPRoute into the Gateway's namespace "
                 "(the default is from: Same).",
    NO_HOSTNAME: "Make spec.hostnames intersect the listener hostname (the same name, a name under its wildcard, or "
                 "no hostnames at all), or change the listener's hostname.",
    NO_PARENT: "Make the parentRef's sectionName name an existing listener and its port a listener port (or leave "
               "both out to attach to every listener).",
}
_BACKEND_FIX = {
    BACKEND_NOT_FOUND: "Create the Service or correct backendRefs[].name and namespace (a Service name, not a "
                       "hostname).",
    REF_NOT_PERMITTED: "Create a ReferenceGrant in the backend's namespace with from: {{group: "
                       "gateway.networking.k8s.io, kind: HTTPRoute, namespace: {route_ns}}} and to: {{group: '', "
                       "kind: Service}}.",
    INVALID_KIND: "Point backendRefs at a core Service (group '', kind Service), the only backend kind istiod "
                  "routes HTTP to here.",
}


def _written(route: HTTPRoute, ref_key: tuple) -> RouteParentStatus | None:
    for p in route.status_parents:
        if p.controller == ISTIO_CONTROLLER and (p.ref.namespace, p.ref.name, p.ref.section, p.ref.port) == ref_key:
            return p
    return None


def _route_findings(state: State, route: HTTPRoute) -> Iterator[Finding]:
    for res in parent_results(state, route):
        key = (res.ref.namespace, res.ref.name, res.ref.section, res.ref.port)
        written = _written(route, key) if route.status_read else None
        cond = written.condition("Accepted") if written else None
        reason, detail, note = res.reason, res.message, ""
        if cond is not None and (cond.status == "True") != res.accepted:
            note = f" (istiod's written status says Accepted={cond.status}/{cond.reason}; trusted over the prediction)"
            reason, detail = (None, "") if cond.status == "True" else (cond.reason, cond.message)
        if reason is None:
            continue
        yield finding("GWAPI-ROUTE-NOT-ACCEPTED", [route.meta.ref, res.gateway.meta.ref], origin=route.meta.origin,
                      route=route.meta.key, parent=res.ref.describe(), reason=reason, detail=detail + note,
                      fix=_ROUTE_FIX.get(reason, "Compare the route with the Gateway's listeners."))
    err = route_backend_error(state, route)
    if err is not None and parent_results(state, route):
        effect = ("The whole route produces no routes." if err.reason not in _BACKEND_FIX else
                  "istiod keeps the route, and requests sent to this backend get HTTP 500 (the classic API gives "
                  "503 NC here).")
        yield finding("GWAPI-BACKEND-UNRESOLVED", [route.meta.ref], origin=route.meta.origin, route=route.meta.key,
                      reason=err.reason, detail=err.message, effect=effect,
                      fix=_BACKEND_FIX.get(err.reason or "", "Use the Service's name (not its hostname) and give a "
                                           "port.").format(route_ns=route.meta.namespace))


def _gateway_findings(state: State, gw: ApiGateway) -> Iterator[Finding]:
    controller = controller_of(gw.class_name, state.gw_classes)
    if controller is None:
        known = ", ".join(sorted({c.meta.name for c in state.gw_classes}))
        yield finding("GWAPI-CLASS-UNKNOWN", [gw.meta.ref], origin=gw.meta.origin, gateway=gw.meta.key,
                      class_name=gw.class_name, why="is neither a GatewayClass object nor one of istiod's built-in "
                      "classes (istio, istio-remote)", known=f"; GatewayClasses here: {known}" if known else "")
        return
    if controller != ISTIO_CONTROLLER:
        return  # another controller's (or istio-remote's) Gateway: istiod does not program it
    status = gateway_status(state, gw)
    st, reason, detail = status.programmed
    written = next((c for c in gw.conditions if c.type == "Programmed"), None) if gw.status_read else None
    note = ""
    if written is not None and written.status != st:
        note = f" (istiod's written status says Programmed={written.status}/{written.reason}; trusted)"
        st, reason, detail = written.status, written.reason, written.message
    if st == "True":
        return
    name = deployment_name(gw)
    if reason == "AddressNotAssigned" and service_type(gw) == "LoadBalancer":
        effect = ("The listeners still work (istiod programs valid listeners whatever the address), but `kubectl "
                  "wait --for=condition=programmed` never returns and no EXTERNAL-IP appears: kind has no load "
                  "balancer.")
        fix = (f"Annotate the Gateway `networking.istio.io/service-type: ClusterIP` (istiod then makes Service {name} "
               f"ClusterIP and reports Programmed=True once its pod is ready) and reach it with `kubectl port-forward "
               f"-n {gw.meta.namespace} svc/{name} {PORT_FORWARD_LOCAL}:{gw.listeners[0].port}`; or install a load "
               "balancer (cloud-provider-kind, MetalLB).")
    else:
        effect = "Clients may not reach the gateway at the address they expect."
        fix = (f"Check Service {gw.meta.namespace}/{name} and its pods (`kubectl get svc,pods -n {gw.meta.namespace} "
               f"-l {NAME_LABEL}={gw.meta.name}`).")
    yield finding("GWAPI-NOT-PROGRAMMED", [gw.meta.ref], origin=gw.meta.origin, gateway=gw.meta.key, reason=reason,
                  detail=detail + note, effect=effect, fix=fix)


def _deployment_differs(state: State, gw: ApiGateway) -> Iterator[Finding]:
    """Live and snapshot mode: the real ``<gateway>-<class>`` Service against the prediction (deploy.py)."""
    if state.simulated or manual(gw) or not is_istio_managed_class(gw.class_name, state.gw_classes):
        return
    name = deployment_name(gw)
    svc = state.service(gw.meta.namespace, name)
    if svc is None:
        return  # Programmed then says the hostname is not found
    diffs, why, fix = [], "", f"Compare with `kubectl get svc -n {gw.meta.namespace} {name} -o yaml`."
    if svc.meta.labels.get(NAME_LABEL) != gw.meta.name:
        diffs.append(f"it has no {NAME_LABEL}={gw.meta.name} label")
        why = ("istiod did not create it: it never overwrites an existing object that lacks the "
               f"{MANAGED_LABEL} label, so this Service is someone else's.")
        fix = f"Delete Service {gw.meta.namespace}/{name} so that istiod creates its own, or rename the Gateway."
    if svc.type != service_type(gw):
        diffs.append(f"type {svc.type}, predicted {service_type(gw)}")
        why = why or (f"istiod sets the type from the Gateway's {SERVICE_TYPE_ANNOTATION} annotation "
                      "(LoadBalancer without it); a hand edit of the Service is reverted on the next reconcile.")
        fix = f"Set the annotation {SERVICE_TYPE_ANNOTATION} on the Gateway instead of editing the Service."
    real, predicted = sorted(p.port for p in svc.ports), sorted(p["port"] for p in service_ports(gw))
    if real != predicted:
        diffs.append(f"ports {real}, predicted {predicted} (15021 plus one per listener port)")
        why = why or "the listeners changed and istiod has not reconciled yet, or the Service was edited."
    if diffs:
        yield finding("GWAPI-DEPLOYMENT-DIFFERS", [svc.meta.ref, gw.meta.ref], origin=gw.meta.origin,
                      service=svc.meta.key, gateway=gw.meta.key, diffs="; ".join(diffs), why=why, fix=fix)


def _shared_pods(state: State) -> Iterator[Finding]:
    api = {(g.meta.namespace, g.meta.name): g for g in state.api_gateways}
    for gw in state.gateways:
        for pod in state.pods_matching(gw.selector or {}):
            owner = api.get((pod.meta.namespace, pod.labels.get(NAME_LABEL, "")))
            if owner is not None and gw.selector:
                yield finding("GWAPI-SHARED-PODS", [gw.meta.ref, owner.meta.ref], origin=gw.meta.origin,
                              gateway=gw.meta.key, selector=fmt_labels(gw.selector), api_gateway=owner.meta.key)
                break


def _crds(state: State) -> Iterator[Finding]:
    objs = [*state.api_gateways, *state.http_routes, *state.gw_classes, *state.reference_grants]
    if state.gwapi_crds is False and objs:
        yield finding("GWAPI-CRDS-MISSING", [o.meta.ref for o in objs[:5]], where="The cluster",
                      objects=", ".join(o.meta.ref for o in objs[:3]), version=versions.GATEWAY_API_VERSION)


def run(state: State) -> Iterator[Finding]:
    yield from _crds(state)
    for gw in state.api_gateways:
        yield from _gateway_findings(state, gw)
        yield from _deployment_differs(state, gw)
    for route in state.http_routes:
        yield from _route_findings(state, route)
    yield from _shared_pods(state)


ANALYZER = Analyzer(
    "gwapi", ("GatewayClass", "Gateway.gateway.networking.k8s.io", "HTTPRoute", "ReferenceGrant", "Gateway", "Pod"),
    ("GWAPI-ROUTE-NOT-ACCEPTED", "GWAPI-BACKEND-UNRESOLVED", "GWAPI-NOT-PROGRAMMED", "GWAPI-CLASS-UNKNOWN",
     "GWAPI-CRDS-MISSING", "GWAPI-SHARED-PODS", "GWAPI-DEPLOYMENT-DIFFERS"),
    run,
)
