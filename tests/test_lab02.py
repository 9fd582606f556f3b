"""Lab 2 checks: the grading matrix (labs/lab02/matrix.yaml, tests/test_grading_matrix.py) holds which
checks each attempt fails and blocks; here, that each failing check names the right object and field,
that every real fix requests the port it chose, and the live evidence."""

from __future__ import annotations

from pathlib import Path

import pytest
from grading_matrix import assert_root_cause, wrong_attempts

from graders.labs import run

LAB_DIR = Path(__file__).resolve().parents[1] / "labs" / "lab02"
REQUEST = "request-chosen-port"

# attempt -> (the check that fails, a substring of its message, a substring of its first hint)
PROBES = {
    "start-unchanged": ("gateway-port-on-service", "port 7070", "spec.servers[].port.number"),
    "port-81": ("gateway-port-unprivileged", "listener 81", "listener port"),
    "containerport-only": ("gateway-port-on-service", "7070", "spec.ports"),
    "nodeport-in-gateway": ("gateway-port-on-service", "30080", "port.number"),
    "service-targetport-privileged": ("gateway-port-unprivileged", "targetPort 80", "targetPort"),
    "iop-drops-default-ports": ("service-keeps-ports", "port 80 (http2) is gone", "istio-operator.yaml"),
    "status-port-15021": ("gateway-port-unprivileged", "15021", "15021"),
    "helm-selector": ("gateway-selects-pods", "selects no pod of the ingress gateway", "spec.selector"),
}


def failed_ids(result) -> list[str]:
    return [c.id for c in result.checks if not c.passed]


def test_every_wrong_attempt_on_disk_has_a_probe():
    assert wrong_attempts("lab02") == sorted(PROBES)


@pytest.mark.parametrize("attempt", sorted(PROBES))
def test_wrong_attempt_message_names_the_object_and_hint_the_field(attempt):
    assert_root_cause("lab02", attempt, PROBES[attempt])


def test_every_kind_of_fix_requests_the_port_and_service_it_chose():
    ports = {}
    for variant in ("reference", "use-8080", "iop-port-7070", "service-port-7070", "second-service-7070"):
        msg = run("lab02", paths=[str(LAB_DIR / "solutions" / variant)]).check(REQUEST).message
        ports[variant] = msg.split(" via ", 1)[1].split(" -> ", 1)[0]
    # 80 and 8080 are the same listener, reached through Service port 80; the 7070 fixes use 7070.
    assert ports == {"reference": "istio-system/istio-ingressgateway port 80",
                     "use-8080": "istio-system/istio-ingressgateway port 80",
                     "iop-port-7070": "istio-system/istio-ingressgateway port 7070",
                     "service-port-7070": "istio-system/istio-ingressgateway port 7070",
                     "second-service-7070": "istio-system/bookinfo-7070 port 7070"}


def test_port_checks_judge_the_port_even_when_the_selector_is_wrong():
    result = run("lab02", paths=[str(LAB_DIR / "wrong" / "helm-selector")])
    port = result.check("gateway-port-on-service")
    assert port.passed and "judged as if Gateway default/bookinfo-gateway selected" in port.message
    assert result.check("vs-bound").passed and result.check(REQUEST).status == "blocked"


def test_a_service_of_your_own_is_named_not_the_course_service():
    result = run("lab02", paths=[str(LAB_DIR / "solutions" / "second-service-7070")])
    assert "forwarded to by Service istio-system/bookinfo-7070 port 7070" in \
        result.check("gateway-port-on-service").message
    start = run("lab02", paths=[str(LAB_DIR / "wrong" / "start-unchanged")]).check("gateway-port-on-service")
    assert "any Service selecting the ingress gateway pods (istio-system/istio-ingressgateway)" in start.message


def _objects(folder: Path) -> list[dict]:
    import yaml

    return [d for f in sorted(folder.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def test_live_request_goes_to_the_port_the_learner_chose(fake_api, fake_kubeconfig):
    """Service patched with 7070 -> 7070: the check port-forwards to the gateway pod's 7070 and gets the page."""
    from fakeapi import FakeGateway

    variant = LAB_DIR / "solutions" / "service-port-7070"
    for obj in _objects(variant):
        if obj["kind"] == "Service":
            rt = fake_api.cluster.resource_for_kind("v1", "Service")
            current = fake_api.find("Service", "istio-system", "istio-ingressgateway")
            obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            fake_api.cluster.replace(rt, "istio-system", "istio-ingressgateway", obj)
        else:
            fake_api.add(obj)
    with FakeGateway({"/productpage": "app"}) as on_7070, FakeGateway({}) as on_8080:
        fake_api.set_portforward_backend(on_7070.address, 7070)
        fake_api.set_portforward_backend(on_8080.address, 8080)
        result = run("lab02", context="kind-istio-lab", kubeconfig=fake_kubeconfig)
    assert result.mode == "live" and failed_ids(result) == []
    msg = result.check(REQUEST).message
    assert msg.startswith("Live request:") and "port 7070" in msg and "HTTP 200 from the application" in msg
    assert on_7070.requests and not on_8080.requests


def test_live_request_through_a_service_of_your_own(fake_api, fake_kubeconfig):
    """The start Gateway on 7070 plus the learner's Service bookinfo-7070: the check port-forwards through that
    Service (its targetPort 7070 on the gateway pod) and names it."""
    from fakeapi import FakeGateway

    for obj in [*_objects(LAB_DIR / "start"), *_objects(LAB_DIR / "solutions" / "second-service-7070")]:
        fake_api.add(obj)
    with FakeGateway({"/productpage": "app"}) as on_7070:
        fake_api.set_portforward_backend(on_7070.address, 7070)
        result = run("lab02", context="kind-istio-lab", kubeconfig=fake_kubeconfig)
    assert failed_ids(result) == [], [(c.id, c.message) for c in result.checks if not c.passed]
    msg = result.check(REQUEST).message
    assert msg.startswith("Live request:") and "via istio-system/bookinfo-7070 port 7070" in msg
    assert on_7070.requests
