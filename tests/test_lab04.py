"""Lab 4 (a second ingress gateway): solutions pass; each known wrong attempt (inherited labels,
no node port, the Gateway still on the first gateway, an IstioOperator that reinstalls or prunes
the course installation) fails exactly the checks it should, with a hint at the right field."""

from __future__ import annotations

import pytest
from test_lab03 import assert_fails_exactly, empty_file, failing, variants

from graders.labs import lab_dir, run
from graders.labs.lab04 import LAB

LAB_DIR = lab_dir(LAB)


@pytest.mark.parametrize("variant", variants("solutions", LAB_DIR))
def test_every_solution_passes_every_check(variant):
    result = run("lab04", paths=[str(LAB_DIR / "solutions" / variant)])
    assert failing(result) == set(), [(c.id, c.message) for c in result.checks if not c.passed]


WRONG = {
    # No `label`: the chart's app/istio labels are inherited; default's Gateway now programs both gateways
    # (GW-SHARED-WORKLOAD) and test's Gateway, selecting the new label, selects nothing.
    "no-label-override": ({"own-labels", "test-on-new-gateway", "test-reachable"},
                          {"own-labels": "components.ingressGateways[].label"}),
    # Only `istio` overridden: app: istio-ingressgateway is still inherited (label is merged, not replaced).
    "only-istio-label": ({"own-labels"}, {"own-labels": "label"}),
    # LoadBalancer without the spare nodePort: EXTERNAL-IP stays <pending> on kind.
    "no-node-port": ({"node-port"}, {"node-port": "nodePort"}),
    # The gateway is installed, but test's Gateway still selects istio: ingressgateway.
    "gateway-still-ingressgateway": ({"test-on-new-gateway", "test-reachable"},
                                     {"test-on-new-gateway": "spec.selector of Gateway test/bookinfo-gateway"}),
    # No profile: istioctl's default profile installs a control plane and a default ingress gateway too.
    "iop-no-profile": ({"install-safe"}, {"install-safe": "spec.profile"}),
    # metadata.name of the course installation: istioctl would prune istiod and the first gateways.
    "iop-same-name": ({"install-safe"}, {"install-safe": "metadata.name"}),
    # Helm-installed gateway (Service 80 -> 80) with the Bookinfo sample's Gateway port 8080 (istio/istio#50693).
    "helm-bookinfo-port-8080": ({"test-reachable"}, {"test-reachable": "neither a port nor a targetPort"}),
}


def test_every_wrong_attempt_has_an_expectation():
    assert set(variants("wrong", LAB_DIR)) == set(WRONG)


@pytest.mark.parametrize("attempt", sorted(WRONG))
def test_wrong_attempt_fails_exactly_the_right_checks(attempt):
    expected, hints = WRONG[attempt]
    assert_fails_exactly(run("lab04", paths=[str(LAB_DIR / "wrong" / attempt)]), expected, hints)


def test_inherited_labels_are_named_with_their_effect():
    result = run("lab04", paths=[str(LAB_DIR / "wrong" / "no-label-override")])
    message = result.check("own-labels").message
    assert "istio=ingressgateway" in message and "app=istio-ingressgateway" in message
    assert "GW-SHARED-WORKLOAD" in message and "default/bookinfo-gateway" in message
    # The trap in action: the second gateway serves default's Bookinfo, not test's.
    assert "default/productpage" in result.check("test-reachable").message


def test_start_state_skips_what_needs_the_second_gateway(tmp_path):
    result = run("lab04", paths=[empty_file(tmp_path)])
    assert result.check("second-gateway").hints
    skipped = {c.id for c in result.checks if c.skipped}
    assert skipped == {"own-labels", "node-port", "test-on-new-gateway", "test-reachable"}
    assert result.check("default-unchanged").passed and result.check("install-safe").passed
    assert "judged by its effects" in result.check("install-safe").message


def test_reachable_check_uses_the_spare_node_port():
    result = run("lab04", paths=[str(LAB_DIR / "solutions" / "reference")])
    message = result.check("test-reachable").message
    assert message.startswith("Simulated request") and "istio-ingress-2/istio-ingressgateway-2 port 80" in message
    assert "curl http://localhost:8081/productpage" in message


def _cluster_objects(attempt: str) -> list[dict]:
    """What `lab setup 4` plus the attempt (IstioOperator rendered as istioctl would) leave in a cluster."""
    from graders.sources.simulated import render_operators
    from graders.yamlio import load_paths

    raws = render_operators(load_paths([str(LAB_DIR / "start"), str(LAB_DIR / attempt)]))
    objs = [r.obj for r in raws if r.obj.get("kind") != "IstioOperator"]
    return sorted(objs, key=lambda o: o["kind"] != "Namespace")  # namespaces first, as kubectl would need


def _live(fake_api, kubeconfig: str):
    """Grade the fake cluster; every port-forward lands on a fake gateway that serves a Bookinfo page."""
    from fakeapi import FakeGateway

    with FakeGateway({"/productpage": "app"}) as gw:
        fake_api.set_portforward_backend(gw.address)
        result = run("lab04", context="kind-istio-lab", kubeconfig=kubeconfig)
    return result, gw


def test_live_cluster_with_the_reference_install_passes(fake_api, fake_kubeconfig):
    fake_api.add_all(_cluster_objects("solutions/reference"))
    result, gw = _live(fake_api, fake_kubeconfig)
    assert result.mode == "live"
    assert failing(result) == set(), [(c.id, c.message) for c in result.checks if not c.passed]
    assert result.check("test-reachable").message.startswith("Live request: GET http://localhost/productpage via "
                                                             "istio-ingress-2/istio-ingressgateway-2 port 80")
    assert "routes it to test/productpage (traced)" in result.check("test-reachable").message
    assert "judged by its effects" in result.check("install-safe").message
    assert [r for r in gw.requests if r[2] == "/productpage"], "a real request went through the port-forward"
    assert not [r for r in fake_api.requests if r.verb in ("create", "update", "patch", "delete")]


def test_live_cluster_shows_the_inherited_label_trap(fake_api, fake_kubeconfig):
    fake_api.add_all(_cluster_objects("wrong/no-label-override"))
    result, _ = _live(fake_api, fake_kubeconfig)
    assert {"own-labels", "test-on-new-gateway", "test-reachable"} <= failing(result)
    # The gateway answered with a Bookinfo page, but the configuration routes it to default's.
    assert "configuration routes this request to default/productpage" in result.check("test-reachable").message
