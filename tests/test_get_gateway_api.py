"""``python -m graders get`` for the Gateway API kinds (issue #15): the v1.5.1 CRDs' printer columns, the
status istiod wrote (live) or would write (off-cluster, said on stderr), and what istiod creates for a
Gateway of class istio (ServiceAccount, Deployment, Service, pods) shown off-cluster."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path

import pytest
import yaml
from fakeapi import FakeApiServer, course_objects
from test_get_command import get, rows

from graders.gwapi.deploy import predicted_objects
from graders.gwapi.objects import parse_gateway
from graders.labs import lab_dir
from graders.labs.lab07 import LAB
from graders.objects import RawObject
from graders.sources import load_state

REPO = Path(__file__).resolve().parents[1]
LAB_DIR = lab_dir(LAB)
REFERENCE = str(LAB_DIR / "solutions" / "reference")
PREDICTED = "Gateway API status predicted by the graders"


def _docs(folder: str | Path) -> list[dict]:
    return [d for f in sorted(Path(folder).glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


# --- simulated ----------------------------------------------------------------------------------------
def test_gateway_classes_as_istiod_creates_them(capsys):
    code, out, err = get(capsys, "gc")
    assert code == 0 and "simulated" in err
    assert rows(out) == [["NAME", "CONTROLLER", "ACCEPTED", "AGE"],
                         ["istio", "istio.io/gateway-controller", "True", "<unknown>"],
                         ["istio-remote", "istio.io/unmanaged-gateway", "True", "<unknown>"]]
    _, wide, _ = get(capsys, "gatewayclasses", "-o", "wide")
    assert rows(wide)[0] == ["NAME", "CONTROLLER", "ACCEPTED", "AGE", "DESCRIPTION"]


def test_gtw_shows_class_address_and_predicted_programmed(capsys):
    code, out, err = get(capsys, "gtw", "-A", REFERENCE)
    assert code == 0 and PREDICTED in err and len(err.strip().splitlines()) == 2
    assert rows(out) == [["NAMESPACE", "NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"],
                         ["ingress", "bookinfo-gateway", "istio", "bookinfo-gateway-istio.ingress.svc.cluster.local",
                          "True", "<unknown>"]]
    # The same object by its full name; -o yaml carries the predicted conditions and attachedRoutes.
    code, out, _ = get(capsys, "gateway.gateway.networking.k8s.io", "bookinfo-gateway", "-n", "ingress", "-o",
                       "yaml", REFERENCE)
    status = yaml.safe_load(out)["status"]
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Accepted", "True", "Accepted"), ("Programmed", "True", "Programmed")]
    assert sum(ln["attachedRoutes"] for ln in status["listeners"]) >= 2


def test_plain_gateway_stays_istios_and_gtw_is_the_gateway_apis(capsys):
    both = [str(REPO / "labs" / "lab01" / "solutions" / "reference"), REFERENCE]  # a classic and an API Gateway
    _, classic, _ = get(capsys, "gateway", "-A", *both)
    _, api, _ = get(capsys, "gtw", "-A", *both)
    assert rows(classic) == [["NAMESPACE", "NAME", "AGE"], ["default", "bookinfo-gateway", "<unknown>"]]
    assert [r[:3] for r in rows(api)] == [["NAMESPACE", "NAME", "CLASS"], ["ingress", "bookinfo-gateway", "istio"]]
    _, out, _ = get(capsys, "gw,gtw", "-A", *both)  # both kinds by name: kubectl's qualified names tell them apart
    assert "gateway.networking.istio.io/bookinfo-gateway" in out
    assert "gateway.gateway.networking.k8s.io/bookinfo-gateway" in out


def test_loadbalancer_on_kind_is_not_programmed_and_has_no_address(capsys):
    code, out, _ = get(capsys, "gtw", "-n", "ingress", str(LAB_DIR / "wrong" / "loadbalancer-on-kind"))
    assert code == 0
    assert rows(out)[1] == ["bookinfo-gateway", "istio", "False", "<unknown>"], "ADDRESS empty, PROGRAMMED False"


def test_misspelled_class_keeps_the_crd_default_status(capsys):
    _, out, _ = get(capsys, "gtw", "-n", "ingress", str(LAB_DIR / "wrong" / "class-typo"))
    assert rows(out)[1][-2:] == ["Unknown", "<unknown>"]


def test_httproutes_and_referencegrants(capsys):
    code, out, _ = get(capsys, "httproute", "-A", REFERENCE)
    assert code == 0
    assert rows(out) == [["NAMESPACE", "NAME", "HOSTNAMES", "AGE"],
                         ["default", "bookinfo", '["bookinfo.example.com"]', "<unknown>"],
                         ["team-a", "reviews", '["reviews.example.com"]', "<unknown>"]]
    code, out, _ = get(capsys, "refgrant", "-n", "default", REFERENCE)
    assert rows(out) == [["NAME", "AGE"], ["team-a-routes-to-reviews", "<unknown>"]]
    assert get(capsys, "referencegrants.gateway.networking.k8s.io", "-n", "default", REFERENCE)[1] == out


def test_httproute_yaml_carries_the_predicted_parent_status(capsys):
    code, out, err = get(capsys, "httproute", "reviews", "-n", "team-a", "-o", "yaml",
                         str(LAB_DIR / "wrong" / "wrong-section-name"))
    assert code == 0 and PREDICTED in err
    (parent,) = yaml.safe_load(out)["status"]["parents"]
    assert parent["controllerName"] == "istio.io/gateway-controller"
    accepted = parent["conditions"][0]
    assert (accepted["type"], accepted["status"], accepted["reason"]) == ("Accepted", "False", "NoMatchingParent")


def test_what_istiod_creates_is_shown_off_cluster(capsys):
    """ServiceAccount, Deployment, Service and a pod `<gateway>-istio`, as istiod's kube-gateway template
    creates them (the SA before the issue #15 fix was not predicted at all)."""
    code, out, _ = get(capsys, "sa", "-n", "ingress", REFERENCE)
    assert code == 0 and rows(out) == [["NAME", "SECRETS", "AGE"], ["bookinfo-gateway-istio", "0", "<unknown>"]]
    _, out, _ = get(capsys, "deploy,svc,pods", "-n", "ingress", REFERENCE)
    assert "deployment.apps/bookinfo-gateway-istio" in out and "service/bookinfo-gateway-istio" in out
    assert "pod/bookinfo-gateway-istio-" in out
    _, out, _ = get(capsys, "sa", "bookinfo-gateway-istio", "-n", "ingress", "-o", "yaml", REFERENCE)
    sa = yaml.safe_load(out)
    assert sa["metadata"]["labels"]["gateway.networking.k8s.io/gateway-name"] == "bookinfo-gateway"
    assert sa["metadata"]["labels"]["gateway.networking.k8s.io/gateway-class-name"] == "istio"
    assert "gateway.istio.io/managed" not in sa["metadata"]["labels"]


def test_predicted_service_account_name_and_labels():
    """deploymentcontroller.go:428-429: the SA is `<gateway>-<class>` unless gateway.istio.io/service-account
    names it; gateway.istio.io/name-override renames the Deployment and Service only. Labels: the Gateway's
    own plus gateway-name and gateway-class-name (kube-gateway.yaml, ServiceAccount)."""
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
          "metadata": {"name": "edge", "namespace": "web", "labels": {"team": "a"}},
          "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}
    objs = {o["kind"]: o for o in predicted_objects(parse_gateway(RawObject(gw, "t", 0)), [])}
    assert objs["ServiceAccount"]["metadata"]["name"] == "edge-istio"
    assert objs["ServiceAccount"]["metadata"]["labels"] == {
        "team": "a", "gateway.networking.k8s.io/gateway-name": "edge",
        "gateway.networking.k8s.io/gateway-class-name": "istio"}
    assert objs["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == "edge-istio"
    renamed = copy.deepcopy(gw)
    renamed["metadata"]["annotations"] = {"gateway.istio.io/name-override": "front"}
    objs = {o["kind"]: o["metadata"]["name"] for o in predicted_objects(parse_gateway(RawObject(renamed, "t", 0)),
                                                                         [])}
    assert objs == {"ServiceAccount": "edge-istio", "Deployment": "front", "Service": "front"}
    renamed["metadata"]["annotations"]["gateway.istio.io/service-account"] = "edge-sa"
    objs = {o["kind"]: o["metadata"]["name"] for o in predicted_objects(parse_gateway(RawObject(renamed, "t", 0)),
                                                                         [])}
    assert objs["ServiceAccount"] == "edge-sa"


def test_the_predicted_service_account_does_not_disturb_the_state():
    state = load_state([REFERENCE])
    assert [d.meta.name for d in state.deployments if d.meta.namespace == "ingress"] == ["bookinfo-gateway-istio"]
    assert not state.load_findings


# --- snapshot and live ----------------------------------------------------------------------------------
def test_snapshot_without_status_is_predicted_and_with_status_is_shown_as_written(capsys, tmp_path):
    docs = _docs(REFERENCE)
    snap = tmp_path / "snap.yaml"
    snap.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": docs}))
    code, out, err = get(capsys, "gtw", "-n", "ingress", "--snapshot", str(snap))
    assert code == 0 and PREDICTED in err and "snapshot" in err
    assert rows(out)[1][1] == "istio"
    written = copy.deepcopy(docs)
    for d in written:
        if d["kind"] == "Gateway":
            d["status"] = {"addresses": [{"type": "IPAddress", "value": "172.18.0.9"},
                                         {"type": "IPAddress", "value": "172.18.0.10"}],
                           "conditions": [{"type": "Programmed", "status": "False", "reason": "AddressNotAssigned"}]}
    snap.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": written}))
    code, out, err = get(capsys, "gtw", "-n", "ingress", "--snapshot", str(snap))
    assert PREDICTED not in err
    assert rows(out)[1] == ["bookinfo-gateway", "istio", "172.18.0.9", "False", "<unknown>"], "first address only"


def test_live_shows_the_status_istiod_wrote(capsys, tmp_path):
    with FakeApiServer(course_objects(gateway_api=True)) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        api.add_all(_docs(LAB_DIR / "start"))
        for doc in _docs(REFERENCE):
            if doc["kind"] == "Gateway":
                doc["status"] = {"addresses": [{"type": "Hostname",
                                                "value": "bookinfo-gateway-istio.ingress.svc.cluster.local"}],
                                 "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"},
                                                {"type": "Programmed", "status": "False",
                                                 "reason": "AddressNotAssigned"}]}
            api.add(doc)
        live = ["--context", "kind-istio-lab", "--kubeconfig", kubeconfig]
        code, out, err = get(capsys, "gtw", "-n", "ingress", *live)
        assert code == 0 and err == "", "live: kubectl's view, no banner, nothing predicted"
        assert rows(out)[1][:4] == ["bookinfo-gateway", "istio", "bookinfo-gateway-istio.ingress.svc.cluster.local",
                                    "False"]
        code, out, _ = get(capsys, "httproute", "-n", "team-a", *live)
        assert rows(out)[1][:2] == ["reviews", '["reviews.example.com"]']
        code, out, err = get(capsys, "sa", "-n", "ingress", *live)
        assert code == 2 and "kubectl get sa -n ingress" in err and len(err.strip().splitlines()) == 1
        assert api.write_requests() == []


# --- lab 7's hints name `get` commands that run ---------------------------------------------------------
@pytest.mark.parametrize("folder", ["class-typo", "namespace-not-allowed", "wrong-section-name", "hostname-mismatch",
                                    "no-reference-grant", "backend-without-namespace", "loadbalancer-on-kind"])
def test_lab7_hints_use_get_and_the_command_runs(capsys, monkeypatch, folder):
    from graders.labs import run

    monkeypatch.chdir(REPO)
    result = run("lab07", paths=[str(LAB_DIR / "wrong" / folder)])
    hints = [h for c in result.checks for h in c.hints if "python -m graders get" in h]
    assert hints, [(c.id, c.hints) for c in result.checks if c.hints]
    for hint in hints:
        command = hint.split("`")[1]
        assert "kubectl" not in command
        code, out, err = get(capsys, *shlex.split(command)[4:])
        # What is missing is the point of some hints (no ReferenceGrant, no Service in team-a): kubectl's line.
        assert code == 0 and (out.startswith(("NAME", "NAMESPACE", "apiVersion")) or "No resources found in" in err), \
            command
