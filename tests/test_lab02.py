"""Lab 2 checks: both real fixes (another Service port, or a new Service port for 7070 via the
IstioOperator or a Service patch) pass; the known wrong attempts fail exactly their checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_lab01 import assert_attempt, failed_ids

from graders.labs import run

LAB_DIR = Path(__file__).resolve().parents[1] / "labs" / "lab02"
REQUEST = "request-chosen-port"

WRONG = {
    "start-unchanged": (["gateway-port-on-service", REQUEST],
                        ("gateway-port-on-service", "port 7070", "spec.servers[].port.number")),
    "port-81": (["gateway-port-on-service", "gateway-port-unprivileged", REQUEST],
                ("gateway-port-unprivileged", "listener 81", "listener port")),
    "containerport-only": (["gateway-port-on-service", REQUEST], ("gateway-port-on-service", "7070", "spec.ports")),
    "nodeport-in-gateway": (["gateway-port-on-service", REQUEST], ("gateway-port-on-service", "30080", "port.number")),
    "service-targetport-privileged": (["gateway-port-unprivileged", REQUEST],
                                      ("gateway-port-unprivileged", "targetPort 80", "targetPort")),
    "iop-drops-default-ports": (["service-keeps-ports"], ("service-keeps-ports", "port 80 (http2) is gone",
                                                          "istio-operator.yaml")),
}


def test_every_wrong_attempt_on_disk_is_covered():
    assert sorted(p.name for p in (LAB_DIR / "wrong").iterdir()) == sorted(WRONG)


@pytest.mark.parametrize("variant", sorted(p.name for p in (LAB_DIR / "solutions").iterdir()))
def test_solution_passes_every_check(variant):
    result = run("lab02", paths=[str(LAB_DIR / "solutions" / variant)])
    assert failed_ids(result) == [], [(c.id, c.message) for c in result.checks if not c.passed]
    assert result.score == result.max_score


def test_both_kinds_of_fix_are_provided_and_request_the_port_they_chose():
    ports = {}
    for variant in ("reference", "use-8080", "iop-port-7070", "service-port-7070"):
        msg = run("lab02", paths=[str(LAB_DIR / "solutions" / variant)]).check(REQUEST).message
        ports[variant] = msg.split(" port ", 1)[1].split(" ", 1)[0]
    # 80 and 8080 are the same listener, reached through Service port 80; the 7070 fixes use 7070.
    assert ports == {"reference": "80", "use-8080": "80", "iop-port-7070": "7070", "service-port-7070": "7070"}


@pytest.mark.parametrize("attempt", sorted(WRONG))
def test_wrong_attempt_fails_exactly_its_checks(attempt):
    expected, probe = WRONG[attempt]
    assert_attempt(LAB_DIR, attempt, expected, probe)



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
