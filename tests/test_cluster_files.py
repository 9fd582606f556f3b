"""The course cluster's files (kind config template, IstioOperator, namespaces, Bookinfo, lab start
states and lab.yaml) checked structurally, and the simulated baseline checked against them: what
the graders simulate must be what `cluster up` builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from graders import versions
from graders.labenv import cluster, labops, labspec, manifests
from graders.sources import load_state
from graders.sources.simulated import BOOKINFO_FILE, ISTIO_OPERATOR_FILE, NAMESPACES_FILE

REPO = Path(__file__).resolve().parents[1]
NODE_PORT_RANGE = range(30000, 32768)
NOTEBOOKS = {"01": "lab01-expose-bookinfo.ipynb", "02": "lab02-ports.ipynb", "03": "lab03-conflicts.ipynb",
             "04": "lab04-second-gateway.ipynb", "05": "lab05-egress.ipynb", "06": "lab06-https.ipynb",
             "07": "lab07-gateway-api.ipynb"}


def kind_config(http: int = 8080, https: int = 8443) -> dict:
    return yaml.safe_load(cluster.render_kind_config(cluster.ClusterOptions(http_port=http, https_port=https)))


def iop() -> dict:
    return yaml.safe_load(ISTIO_OPERATOR_FILE.read_text())


def ingress_ports() -> list[dict]:
    return iop()["spec"]["components"]["ingressGateways"][0]["k8s"]["service"]["ports"]


# --- kind config -------------------------------------------------------------------------------------------
def test_kind_config_is_one_control_plane_node_pinned_by_digest() -> None:
    cfg = kind_config()
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = cfg["nodes"]
    assert node["role"] == "control-plane"
    assert node["image"] == versions.KIND_NODE_IMAGE
    assert re.fullmatch(rf"kindest/node:v{re.escape(versions.KUBERNETES_VERSION)}@sha256:[0-9a-f]{{64}}", node["image"])
    assert node["labels"] == {versions.CLUSTER_MARKER_LABEL: "true"}


def test_kind_template_holds_no_pin_of_its_own() -> None:
    text = cluster.KIND_TEMPLATE.read_text()
    assert "kindest/node" not in text and "sha256" not in text, "the node image pin lives in graders/versions.py"
    assert "$" not in cluster.render_kind_config(cluster.ClusterOptions()), "every placeholder is filled"


@pytest.mark.parametrize(("http", "https"), [(8080, 8443), (9080, 9443)])
def test_kind_port_mappings(http: int, https: int) -> None:
    mappings = kind_config(http, https)["nodes"][0]["extraPortMappings"]
    for m in mappings:
        assert m["listenAddress"] == "127.0.0.1" and m["protocol"] == "TCP"
        assert m["containerPort"] in NODE_PORT_RANGE, "kind maps host ports to node ports: containerPort == nodePort"
    by_node_port = {m["containerPort"]: m["hostPort"] for m in mappings}
    assert len(by_node_port) == len(mappings) and len({m["hostPort"] for m in mappings}) == len(mappings)
    assert by_node_port == {30080: http, 30443: https, 30021: 15021, 30081: 8081, 30070: 7070}
    # every fixed nodePort of the course's ingress gateway is mapped to the host
    assert {p["nodePort"] for p in ingress_ports()} <= set(by_node_port)


def test_spare_node_ports_are_the_ones_the_labs_use() -> None:
    mapped = {m["containerPort"] for m in kind_config()["nodes"][0]["extraPortMappings"]}
    lab4 = yaml.safe_load((REPO / "labs/lab04/solutions/reference/ingress-2.yaml").read_text())
    lab4_ports = lab4["spec"]["components"]["ingressGateways"][0]["k8s"]["service"]["ports"]
    assert {p["nodePort"] for p in lab4_ports if "nodePort" in p} <= mapped
    lab2 = [d for d in yaml.safe_load_all((REPO / "labs/lab02/solutions/service-port-7070/gateway-service.yaml")
                                          .read_text()) if d]
    assert {p["nodePort"] for d in lab2 for p in d["spec"]["ports"] if p["port"] == 7070} <= mapped


# --- IstioOperator ------------------------------------------------------------------------------------------
def test_istio_operator_file() -> None:
    doc = iop()
    assert doc["apiVersion"] == "install.istio.io/v1alpha1" and doc["kind"] == "IstioOperator"
    assert doc["metadata"]["name"] == labops.baseline_iop_name() == "istio-lab"
    spec = doc["spec"]
    assert spec["profile"] == "demo"
    (ingress,) = spec["components"]["ingressGateways"]
    assert ingress["name"] == "istio-ingressgateway" and ingress["enabled"] is True
    assert ingress["k8s"]["service"]["type"] == "NodePort"
    assert [(p["name"], p["port"], p["targetPort"], p["nodePort"]) for p in ingress_ports()] == [
        ("status-port", 15021, 15021, 30021), ("http2", 80, 8080, 30080), ("https", 443, 8443, 30443)]
    assert all(p["nodePort"] in NODE_PORT_RANGE for p in ingress_ports())
    (egress,) = spec["components"]["egressGateways"]
    assert egress["name"] == "istio-egressgateway" and egress["enabled"] is True
    assert "service" not in egress.get("k8s", {}), "the egress gateway keeps the chart's ClusterIP Service"
    assert {p["name"]: p["nodePort"] for p in ingress_ports()} == cluster.ingress_node_ports()


# --- the simulated baseline agrees with the files cluster up applies -------------------------------------------
def test_simulated_gateway_services_match_the_install_files() -> None:
    state = load_state()
    ingress = state.service("istio-system", "istio-ingressgateway")
    assert ingress is not None and ingress.type == "NodePort"
    assert [(p.name, p.port, p.target_port, p.node_port) for p in ingress.ports] == [
        (p["name"], p["port"], p["targetPort"], p["nodePort"]) for p in ingress_ports()]
    assert dict(ingress.selector or {}) == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    egress = state.service("istio-system", "istio-egressgateway")
    assert egress is not None and egress.type == "ClusterIP"
    assert all(p.node_port is None for p in egress.ports)
    mapped = {m["containerPort"] for m in kind_config()["nodes"][0]["extraPortMappings"]}
    assert {p.node_port for s in state.services for p in s.ports if p.node_port} <= mapped
    istiod = [d for d in state.deployments if d.meta.key == "istio-system/istiod"]
    assert istiod and state.outbound_traffic_policy == "ALLOW_ANY"


def test_simulated_namespaces_and_bookinfo_match_the_files() -> None:
    state = load_state()
    namespaces = {n.meta.name: dict(n.meta.labels) for n in state.namespaces}
    for m in manifests.load(NAMESPACES_FILE):
        assert namespaces[m.obj["metadata"]["name"]] == (m.obj["metadata"].get("labels") or {})
    assert namespaces["default"]["istio-injection"] == "enabled"
    files = manifests.load(BOOKINFO_FILE)
    want_services = {m.obj["metadata"]["name"]: [(p["name"], p["port"]) for p in m.obj["spec"]["ports"]]
                     for m in files if m.kind == "Service"}
    have_services = {s.meta.name: [(p.name, p.port) for p in s.ports] for s in state.services
                     if s.meta.namespace == "default"}
    assert have_services == want_services
    assert set(want_services) == {"productpage", "details", "reviews", "ratings"}
    want_deps = {m.obj["metadata"]["name"]: m.obj["spec"]["template"]["metadata"]["labels"]
                 for m in files if m.kind == "Deployment"}
    have_deps = {d.meta.name: dict(d.template_labels) for d in state.deployments if d.meta.namespace == "default"}
    assert have_deps == want_deps
    assert set(want_deps) == {"productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1"}


# --- lab files -----------------------------------------------------------------------------------------------
def test_every_lab_has_a_valid_lab_yaml_whose_files_exist() -> None:
    specs = labspec.load_all()
    assert [s.id for s in specs] == list(NOTEBOOKS)
    for spec in specs:
        assert spec.notebook == NOTEBOOKS[spec.id]
        for phase in labspec.PHASES:
            labspec.require_paths(spec, phase)
        assert [s.path for s in spec.solve if s.action == "apply"] == [spec.folder / "solutions" / "reference"]


def test_lab_steps_that_install_istio_operators() -> None:
    lab4, lab5 = labspec.load("4"), labspec.load("5")
    installs = [s for s in lab4.solve if s.action == "istioctl-install"]
    (_file, operator), = manifests.istio_operator_files(installs[0].path)
    assert operator["metadata"]["name"] not in ("", labops.baseline_iop_name()), \
        "lab 4's gateway is a separate installation, so reset can find what istioctl created for it"
    lab5_installs = [s for s in lab5.solve if s.action == "istioctl-install"]
    (_, op5), = manifests.istio_operator_files(lab5_installs[0].path)
    assert op5["metadata"]["name"] == labops.baseline_iop_name()
    assert op5["spec"]["meshConfig"]["outboundTrafficPolicy"]["mode"] == "REGISTRY_ONLY"
    assert [s.path for s in lab5.reset if s.action == "istioctl-install"] == [ISTIO_OPERATOR_FILE]


def test_start_states_load_and_stay_free_of_course_labels() -> None:
    for spec in labspec.load_all():
        for step in spec.setup:
            for m in manifests.load(step.path):
                labels = m.obj["metadata"].get("labels") or {}
                assert versions.COURSE_LABEL not in labels and versions.LAB_LABEL not in labels, m.origin


def test_lab3_start_has_a_second_bookinfo_and_the_older_gateway_in_default() -> None:
    objs = [m for step in labspec.load("3").setup for m in manifests.load(step.path)]
    refs = [manifests.ref(m) for m in objs]
    assert refs[0].kind == "Namespace" and refs[0].name == "test"
    test_services = {r.name for r in refs if r.kind == "Service" and r.namespace == "test"}
    assert test_services == {"productpage", "details", "reviews", "ratings"}
    gateways = [(r.namespace, r.name) for r in refs if r.kind == "Gateway"]
    assert gateways == [("default", "bookinfo-gateway"), ("test", "bookinfo-gateway")], \
        "default's Gateway is applied first, so it is the older one"
    servers = [m.obj["spec"]["servers"] for m in objs if m.kind == "Gateway"]
    assert servers[0] == servers[1], "same port and hosts in both namespaces: that is the conflict"


def test_lab4_second_bookinfo_is_lab3s() -> None:
    def body(path: str) -> list:
        return [d for d in yaml.safe_load_all((REPO / path).read_text()) if d]

    assert body("labs/lab04/start/test-bookinfo.yaml") == body("labs/lab03/start/test-bookinfo.yaml")
    assert not [m for m in manifests.load(REPO / "labs/lab04/start") if m.kind == "Gateway"
                and m.obj["metadata"]["namespace"] == "test"], "lab 4 binds test's Bookinfo itself"
