"""Gateway API objects in live (fake API server, real kubernetes client), snapshot and simulated mode:
the same analysis and trace whatever the source, istiod's written status read and trusted in live mode."""

from __future__ import annotations

from pathlib import Path

import yaml
from fakeapi import FakeApiServer, gateway_api_crds, served_objects

from graders.analyzers import analyze
from graders.sources import load_state
from graders.trace import Request, trace

CONTEXT = "kind-istio-lab"
LABELS = {"gateway.networking.k8s.io/gateway-name": "gw"}


def _objects(*, route_status: dict | None = None) -> list[dict]:
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
          "metadata": {"name": "gw", "namespace": "default",
                       "annotations": {"networking.istio.io/service-type": "ClusterIP"}},
          "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
                                                                        "hostname": "bookinfo.example.com"}]}}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "r", "namespace": "default"},
             "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["nope.example.com"],
                      "rules": [{"backendRefs": [{"name": "productpage", "port": 9080}]}]}}
    if route_status is not None:
        route["status"] = route_status
    # What istiod created for the Gateway (kube-gateway.yaml), as the cluster shows it.
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gw-istio", "namespace": "default",
                                                                        "labels": LABELS},
           "spec": {"replicas": 1, "selector": {"matchLabels": LABELS}, "template": {
               "metadata": {"labels": LABELS},
               "spec": {"containers": [{"name": "istio-proxy", "image": "x", "args": ["proxy", "router"]}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gw-istio", "namespace": "default",
                                                               "labels": LABELS},
           "spec": {"type": "ClusterIP", "selector": LABELS, "ports": [{"name": "status-port", "port": 15021},
                                                                       {"name": "http", "port": 80}]}}
    return [gw, route, dep, svc]


def _codes(state) -> list[tuple[str, str | None]]:
    return [(f.code, f.details.get("reason")) for f in analyze(state) if f.code.startswith("GWAPI")]


def test_live_reads_gateway_api_objects_and_predicts_status(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                            tmp_path: Path) -> None:
    fake_api.add_all(gateway_api_crds())
    fake_api.add_all(_objects())
    state = load_state(context=CONTEXT, kubeconfig=fake_kubeconfig)
    assert state.gwapi_crds is True and [g.meta.name for g in state.api_gateways] == ["gw"]
    assert _codes(state) == [("GWAPI-ROUTE-NOT-ACCEPTED", "NoMatchingListenerHostname")]
    assert any(r.group == "gateway.networking.k8s.io" and r.resource == "httproutes"
               for r in fake_api.calls("list"))
    t = trace(state, Request("default/gw-istio", 80, "nope.example.com", "/"))
    assert (t.outcome, t.http_status) == ("not-found", 404)
    # The same objects as a snapshot give the same findings.
    snap = tmp_path / "snap.yaml"
    snap.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": served_objects(
        fake_api, ("Namespace", "Pod", "Deployment", "Service", "Gateway", "HTTPRoute"))}))
    assert _codes(load_state(snapshot=str(snap))) == _codes(state)


def test_live_trusts_istiods_written_status(fake_api: FakeApiServer, fake_kubeconfig: str) -> None:
    written = {"parents": [{"parentRef": {"name": "gw"}, "controllerName": "istio.io/gateway-controller",
                            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                                            "message": "Route was valid"}]}]}
    fake_api.add_all(gateway_api_crds())
    fake_api.add_all(_objects(route_status=written))
    assert _codes(load_state(context=CONTEXT, kubeconfig=fake_kubeconfig)) == []


def test_live_without_crds_says_so_for_learner_files(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump_all(_objects()[:2]))
    state = load_state([str(path)], context=CONTEXT, kubeconfig=fake_kubeconfig)
    assert state.gwapi_crds is False
    assert ("GWAPI-CRDS-MISSING", None) in _codes(state)
    assert not any(r.group == "gateway.networking.k8s.io" and r.verb == "list" for r in fake_api.requests)


def test_live_service_differing_from_the_prediction(fake_api: FakeApiServer, fake_kubeconfig: str) -> None:
    objs = _objects()
    del objs[0]["metadata"]["annotations"]  # istiod would make a LoadBalancer; the cluster shows ClusterIP
    fake_api.add_all(gateway_api_crds())
    fake_api.add_all(objs)
    [f] = [f for f in analyze(load_state(context=CONTEXT, kubeconfig=fake_kubeconfig))
           if f.code == "GWAPI-DEPLOYMENT-DIFFERS"]
    assert "type ClusterIP, predicted LoadBalancer" in f.message and "networking.istio.io/service-type" in f.hint


def test_simulated_mode_predicts_the_gateway_deployment(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    objs = _objects()[:2]
    del objs[0]["metadata"]["annotations"]
    path.write_text(yaml.safe_dump_all(objs))
    state = load_state([str(path)])
    assert state.service("default", "gw-istio").type == "LoadBalancer"
    assert sorted(_codes(state)) == [("GWAPI-NOT-PROGRAMMED", "AddressNotAssigned"),
                                     ("GWAPI-ROUTE-NOT-ACCEPTED", "NoMatchingListenerHostname")]


def test_manifests_of_class_istio_are_written_for_an_istio_cluster(tmp_path: Path) -> None:
    """--no-baseline: a Gateway of class istio, like a networking.istio.io object, says Istio is there."""
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump_all(_objects()[:2]))
    state = load_state([str(path)], baseline=False)
    assert state.istio_installed and "ISTIO-NOT-INSTALLED" not in [f.code for f in analyze(state)]
