"""What istiod deploys for a Gateway API Gateway of an Istio class, predicted from the Gateway alone.

istiod renders the ``kube-gateway`` injection template (manifests/charts/istio-control/istio-discovery/
files/kube-gateway.yaml, Istio 1.30.3) into a ServiceAccount, a Deployment and a Service named
``<gateway>-<class>`` in the Gateway's namespace. In simulated and manifests mode these predicted objects
join the state (origin ``predicted by istiod ...``) so the classic machinery (pods, Services, endpoints)
sees the gateway; in live and snapshot mode the real ones are read and only compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graders.gwapi import BUILTIN_CLASSES, ISTIO_CONTROLLER
from graders.gwapi.objects import ApiGateway, GatewayClass

NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
CLASS_LABEL = "gateway.networking.k8s.io/gateway-class-name"
MANAGED_LABEL = "gateway.istio.io/managed"
MANAGED_VALUE = "istio.io-gateway-controller"
SERVICE_TYPE_ANNOTATION = "networking.istio.io/service-type"
NAME_OVERRIDE_ANNOTATION = "gateway.istio.io/name-override"
SERVICE_ACCOUNT_ANNOTATION = "gateway.istio.io/service-account"
STATUS_PORT = 15021


def controller_of(class_name: str, classes: Iterable[GatewayClass]) -> str | None:
    """The controllerName serving a class: the GatewayClass object's, else the built-in class's
    (a Gateway naming ``istio`` works without the object: gatewaycommon/gatewayclass_collection.go)."""
    for gc in classes:
        if gc.meta.name == class_name:
            return gc.controller
    return BUILTIN_CLASSES.get(class_name)


def is_istio_managed_class(class_name: str, classes: Iterable[GatewayClass]) -> bool:
    return controller_of(class_name, classes) == ISTIO_CONTROLLER


def manual(gw: ApiGateway) -> bool:
    """Manual mode: istiod deploys nothing when spec.addresses holds a Hostname address or several
    addresses (gatewaycommon/gateway_utils.go IsManaged); one IPAddress (or untyped) address stays managed."""
    if not gw.addresses:
        return False
    return len(gw.addresses) > 1 or gw.addresses[0][0] not in ("", "IPAddress")


def deployment_name(gw: ApiGateway) -> str:
    """``<gateway>-<class>`` unless the name-override annotation says otherwise (gateway_utils.go)."""
    return gw.annotations.get(NAME_OVERRIDE_ANNOTATION) or f"{gw.meta.name}-{gw.class_name}"


def service_account_name(gw: ApiGateway) -> str:
    """``<gateway>-<class>`` unless the service-account annotation names another: the name-override
    annotation renames the Deployment and Service but not the ServiceAccount
    (gatewaycommon/deploymentcontroller.go:428-429 at 1.30.3: both default to GetDefaultName)."""
    return gw.annotations.get(SERVICE_ACCOUNT_ANNOTATION) or f"{gw.meta.name}-{gw.class_name}"


def service_type(gw: ApiGateway) -> str:
    """LoadBalancer unless the Gateway's networking.istio.io/service-type annotation says otherwise."""
    return gw.annotations.get(SERVICE_TYPE_ANNOTATION) or "LoadBalancer"


def service_ports(gw: ApiGateway) -> list[dict[str, Any]]:
    """status-port 15021, then one port per distinct listener port named after the first listener on it
    (dots become '-', cut to 63), appProtocol the lower-cased protocol, no targetPort
    (deploymentcontroller.go:911-950 at 1.30.3)."""
    ports: list[dict[str, Any]] = [{"name": "status-port", "port": STATUS_PORT, "protocol": "TCP",
                                    "appProtocol": "tcp"}]
    seen: set[int] = set()
    for listener in gw.listeners:
        if listener.port in seen:
            continue
        seen.add(listener.port)
        ports.append({"name": listener.name.replace(".", "-")[:63], "port": listener.port, "protocol": "TCP",
                      "appProtocol": listener.protocol.lower()})
    return ports


def labels(gw: ApiGateway, *, pod: bool = False, service: bool = False) -> dict[str, str]:
    """The Gateway's own labels plus the controller's (kube-gateway.yaml L31-37, L59-71, L331-336)."""
    out = dict(gw.meta.labels)
    if pod:
        out = {"sidecar.istio.io/inject": "false", "service.istio.io/canonical-name": deployment_name(gw),
               "service.istio.io/canonical-revision": "latest", **out}
    out[NAME_LABEL] = gw.meta.name
    out[CLASS_LABEL] = gw.class_name
    if not service:
        out[MANAGED_LABEL] = MANAGED_VALUE
    return out


def predicted_objects(gw: ApiGateway, classes: Iterable[GatewayClass]) -> list[dict[str, Any]]:
    """The raw ServiceAccount, Deployment and Service istiod would create, or [] for a Gateway istiod
    does not deploy (another controller's class, or manual mode). The ServiceAccount carries the Gateway's
    labels plus gateway-name and gateway-class-name but not the managed label (kube-gateway.yaml L1-14);
    the pods run as it (L85 ``serviceAccountName``)."""
    if not is_istio_managed_class(gw.class_name, classes) or manual(gw):
        return []
    name, ns = deployment_name(gw), gw.meta.namespace
    origin = {"gateway.istio.io/predicted-for": f"{ns}/{gw.meta.name}"}
    account = service_account_name(gw)
    service_account = {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": account, "namespace": ns, "labels": labels(gw, service=True), "annotations": origin},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels(gw), "annotations": origin},
        "spec": {"replicas": 1, "selector": {"matchLabels": {NAME_LABEL: gw.meta.name}},
                 "template": {"metadata": {"labels": labels(gw, pod=True)},
                              "spec": {"serviceAccountName": account, "containers": [{
                                  "name": "istio-proxy", "image": "auto", "args": ["proxy", "router"],
                                  "ports": [{"containerPort": 15020, "name": "metrics"},
                                            {"containerPort": 15021, "name": "status-port"},
                                            {"containerPort": 15090, "name": "http-envoy-prom"}]}]}}},
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels(gw, service=True), "annotations": origin},
        "spec": {"type": service_type(gw), "selector": {NAME_LABEL: gw.meta.name}, "ports": service_ports(gw)},
    }
    return [service_account, deployment, service]
