"""What ``python -m graders get`` shows for Gateway API objects when istiod wrote nothing: the objects
istiod would create for each Gateway (deploy.py) and the status it would write (attach.py), laid into
the raw objects kubectl would print. Live objects (and snapshot objects that carry a status) keep the
status istiod wrote; only an object without a ``status`` gets the prediction, and the command says so.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from graders.gwapi import BUILTIN_CLASSES, GROUP, ISTIO_CONTROLLER
from graders.gwapi.attach import gateway_status, parent_results, route_backend_error
from graders.gwapi.deploy import controller_of, predicted_objects
from graders.state import State

PREDICTED_NOTE = ("Gateway API status predicted by the graders (graders/gwapi/attach.py), not written by istiod: "
                  "on the cluster, istiod writes it")


def deployed_objects(state: State) -> list[dict[str, Any]]:
    """The ServiceAccount, Deployment and Service istiod would create for every Gateway of an Istio class."""
    return [obj for gw in state.api_gateways for obj in predicted_objects(gw, state.gw_classes)]


def _condition(type_: str, cond: tuple[str, str, str]) -> dict[str, str]:
    status, reason, message = cond
    return {"type": type_, "status": status, "reason": reason, "message": message}


def _class_status(state: State, name: str) -> dict[str, Any]:
    """istiod accepts the classes whose controller it is (the built-in ones' controllers); any other class
    keeps the CRD's default status, Accepted Unknown/Pending (gatewayclasses CRD v1.5.1)."""
    controller = controller_of(name, state.gw_classes)
    if controller in BUILTIN_CLASSES.values():
        return {"conditions": [_condition("Accepted", ("True", "Accepted", "Handled by Istio controller"))]}
    return {"conditions": [_condition("Accepted", ("Unknown", "Pending", "Waiting for controller"))]}


def _gateway_status(state: State, namespace: str, name: str) -> dict[str, Any] | None:
    gw = next((g for g in state.api_gateways if (g.meta.namespace, g.meta.name) == (namespace, name)), None)
    if gw is None:
        return None
    if controller_of(gw.class_name, state.gw_classes) not in BUILTIN_CLASSES.values():  # no istiod status
        return {"conditions": [_condition("Accepted", ("Unknown", "Pending", "Waiting for controller")),
                               _condition("Programmed", ("Unknown", "Pending", "Waiting for controller"))]}
    st = gateway_status(state, gw)
    addresses = []
    for host in st.services:
        svc = state.service_by_fqdn.get(host)
        if svc is None or svc.meta.namespace != gw.meta.namespace or not state.ready_pods_for(svc):
            continue
        if svc.type == "LoadBalancer":  # a pending LoadBalancer hostname is not reported (conversion.go)
            addresses += [{"type": "IPAddress", "value": ip} for ip in svc.lb_ingress]
        else:
            addresses.append({"type": "Hostname", "value": host})
    listeners = [{"name": ln.name, "attachedRoutes": st.attached.get(ln.name, 0), "supportedKinds": []}
                 for ln in gw.listeners]
    out: dict[str, Any] = {"conditions": [_condition("Accepted", st.accepted),
                                          _condition("Programmed", st.programmed)], "listeners": listeners}
    if addresses:
        out["addresses"] = addresses
    return out


def _route_status(state: State, namespace: str, name: str) -> dict[str, Any] | None:
    """``status.parents``: one entry per parentRef naming a Gateway istiod handles, with Accepted and
    ResolvedRefs as istiod words them (conditions.go:140-160)."""
    route = next((r for r in state.http_routes if (r.meta.namespace, r.meta.name) == (namespace, name)), None)
    if route is None:
        return None
    err = route_backend_error(state, route)
    resolved = ("True", "ResolvedRefs", "All references resolved") if err is None else \
        ("False", str(err.reason), err.message)
    parents = []
    for p in parent_results(state, route):
        ref: dict[str, Any] = {"group": p.ref.group, "kind": p.ref.kind, "name": p.ref.name,
                               "namespace": p.ref.namespace}
        if p.ref.section:
            ref["sectionName"] = p.ref.section
        if p.ref.port is not None:
            ref["port"] = p.ref.port
        accepted = ("True", "Accepted", p.message) if p.accepted else ("False", str(p.reason), p.message)
        parents.append({"parentRef": ref, "controllerName": ISTIO_CONTROLLER,
                        "conditions": [_condition("Accepted", accepted), _condition("ResolvedRefs", resolved)]})
    return {"parents": parents}


def with_predicted_status(objects: Sequence[dict], state: State) -> list[dict]:
    """The objects, GatewayClasses, Gateway API Gateways and HTTPRoutes without a status replaced by copies carrying
    the predicted one (the others are the same objects)."""
    out = []
    for obj in objects:
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        md = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        status = None
        if group == GROUP and not obj.get("status"):
            if obj.get("kind") == "GatewayClass":
                status = _class_status(state, str(md.get("name")))
            elif obj.get("kind") == "Gateway":
                status = _gateway_status(state, str(md.get("namespace", "default")), str(md.get("name")))
            elif obj.get("kind") == "HTTPRoute":
                status = _route_status(state, str(md.get("namespace", "default")), str(md.get("name")))
        out.append({**copy.deepcopy(obj), "status": status} if status is not None else obj)
    return out
