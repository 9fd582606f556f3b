"""Lab 7 (Gateway API): every solution passes, every known wrong attempt fails exactly the checks it
should with istiod's reason and a hint naming the field; on a live cluster (the fake API server) the
checks read the status istiod wrote and send real requests through a port-forward to
``ingress/bookinfo-gateway-istio``; `lab setup/solve/reset 7` create and remove exactly the lab's objects."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakeapi import FakeApiServer, FakeGateway, course_objects, served_objects
from test_lab03 import empty_file, failing, variants

from graders.cli import main
from graders.gwapi.deploy import predicted_objects
from graders.gwapi.objects import parse_gateway
from graders.labs import lab_dir, run
from graders.labs.lab07 import LAB
from graders.objects import RawObject

LAB_DIR = lab_dir(LAB)
REFERENCE = LAB_DIR / "solutions" / "reference"
CONTEXT = "kind-istio-lab"
ISTIO = "istio.io/gateway-controller"


def assert_fails_exactly(result: Any, expected: set[str], hint_words: dict[str, str]) -> None:
    """Exactly ``expected`` fail or are blocked; status-written (live only) is not-evaluated; each named
    failure has two hints, the first with the given words; every other check passes."""
    assert result.check("status-written").status == "not-evaluated"
    assert failing(result) - {"status-written"} == expected, [(c.id, c.message) for c in result.checks if not c.passed]
    for check_id, words in hint_words.items():
        chk = result.check(check_id)
        assert chk.status == "failed" and len(chk.hints) >= 2, chk
        assert words.lower() in chk.hints[0].lower(), chk.hints
    for chk in result.checks:
        if chk.status == "failed":
            assert chk.hint, f"{chk.id} failed without a hint"


@pytest.mark.parametrize("variant", variants("solutions", LAB_DIR))
def test_every_solution_passes_every_check(variant: str) -> None:
    result = run("lab07", paths=[str(LAB_DIR / "solutions" / variant)])
    assert failing(result) == {"status-written"}, [(c.id, c.message) for c in result.checks if not c.passed]
    assert result.check("status-written").status == "not-evaluated"
    assert result.score == result.max_score == 14


WRONG = {
    "hostname-mismatch": ({"bookinfo-route-accepted", "productpage-reachable"},
                          {"bookinfo-route-accepted": "spec.hostnames of HTTPRoute default/bookinfo"}),
    "wrong-section-name": ({"cross-route-accepted", "reviews-reachable"},
                           {"cross-route-accepted": "sectionName"}),
    "namespace-not-allowed": ({"cross-route-accepted", "reviews-reachable"}, {"cross-route-accepted": "allowedRoutes"}),
    "no-reference-grant": ({"reviews-backend-resolved", "reviews-reachable"},
                           {"reviews-backend-resolved": "ReferenceGrants in namespace default"}),
    "backend-without-namespace": ({"reviews-backend-resolved", "reviews-reachable"},
                                  {"reviews-backend-resolved": "backendRefs of HTTPRoute team-a/reviews"}),
    "class-typo": ({"gateway-class", "gateway-programmed", "bookinfo-route-accepted", "productpage-reachable",
                    "cross-route-accepted", "reviews-reachable"}, {"gateway-class": "spec.gatewayClassName"}),
    "loadbalancer-on-kind": ({"gateway-programmed"}, {"gateway-programmed": "metadata.annotations"}),
}
REASONS = {"hostname-mismatch": ("bookinfo-route-accepted", "reason NoMatchingListenerHostname"),
           "wrong-section-name": ("cross-route-accepted", 'reason NoMatchingParent (sectionName "reviews" not found)'),
           "namespace-not-allowed": ("cross-route-accepted", "reason NotAllowedByListeners"),
           "no-reference-grant": ("reviews-backend-resolved", "reason RefNotPermitted"),
           "backend-without-namespace": ("reviews-backend-resolved", "reason BackendNotFound"),
           "class-typo": ("gateway-class", "'isito'"),
           "loadbalancer-on-kind": ("gateway-programmed", "reason AddressNotAssigned")}


def test_every_wrong_attempt_has_an_expectation() -> None:
    assert set(variants("wrong", LAB_DIR)) == set(WRONG) == set(REASONS)


@pytest.mark.parametrize("attempt", sorted(WRONG))
def test_wrong_attempt_fails_exactly_the_right_checks_with_istiods_reason(attempt: str) -> None:
    expected, hints = WRONG[attempt]
    result = run("lab07", paths=[str(LAB_DIR / "wrong" / attempt)])
    assert_fails_exactly(result, expected, hints)
    check_id, words = REASONS[attempt]
    assert words in result.check(check_id).message


def test_the_start_state_asks_for_a_gateway_api_gateway(tmp_path: Path) -> None:
    result = run("lab07", paths=[empty_file(tmp_path)])
    assert result.check("ready").passed, result.check("ready").message
    assert "serves the Gateway API" in result.check("ready").message
    chk = result.check("gateway-class")
    assert chk.status == "failed" and "No Gateway of the Gateway API" in chk.message
    assert "networking.istio.io" in chk.hints[0]
    assert result.check("reviews-backend-resolved").status == "blocked"


def test_a_classic_istio_gateway_does_not_count(tmp_path: Path) -> None:
    path = tmp_path / "classic.yaml"
    path.write_text("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: bookinfo-gateway, "
                    "namespace: ingress}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: "
                    "{number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n")
    assert "No Gateway of the Gateway API" in run("lab07", paths=[str(path)]).check("gateway-class").message


def test_the_loadbalancer_attempt_is_still_reachable_through_a_port_forward() -> None:
    """Programmed=False on kind does not stop the listeners: the request checks pass, and the message
    names the Service a port-forward reaches."""
    result = run("lab07", paths=[str(LAB_DIR / "wrong" / "loadbalancer-on-kind")])
    msg = result.check("productpage-reachable").message
    assert result.check("productpage-reachable").passed
    assert "via ingress/bookinfo-gateway-istio port 80" in msg
    assert "port-forward svc/bookinfo-gateway-istio 8088:80" in msg and "Host: bookinfo.example.com" in msg


def test_the_missing_grant_gives_500_in_the_trace() -> None:
    """What a client sees without the ReferenceGrant: the gateway's own 500 (not the classic 503)."""
    from graders.sources import load_state
    from graders.trace import Request, trace

    state = load_state([str(LAB_DIR / "start"), str(LAB_DIR / "wrong" / "no-reference-grant")])
    t = trace(state, Request("ingress/bookinfo-gateway-istio", 80, "reviews.example.com", "/reviews/0"))
    assert (t.outcome, t.http_status) == ("backend-invalid", 500)


# --- a live cluster: the fake API server with istiod's objects and written status ------------------------
def _docs(folder: Path) -> list[dict]:
    return [d for f in sorted(folder.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def _accepted(route: dict, gw: tuple[str, str], resolved: tuple[str, str] = ("True", "ResolvedRefs")) -> None:
    route["status"] = {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw[1], "namespace": gw[0],
                      **({"sectionName": "http"} if "sectionName" in route["spec"]["parentRefs"][0] else {})},
        "controllerName": ISTIO,
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Route was valid"},
                       {"type": "ResolvedRefs", "status": resolved[0], "reason": resolved[1],
                        "message": "Resolved all references" if resolved[0] == "True" else "not accessible"}]}]}


def _istiod_view(*, team_resolved: tuple[str, str] = ("True", "ResolvedRefs"), written: bool = True) -> list[dict]:
    """The reference solution as a cluster shows it after istiod reconciled it: the Deployment and Service
    it renders for the Gateway, and (``written``) the status it writes."""
    out: list[dict] = []
    for doc in _docs(REFERENCE):
        doc = copy.deepcopy(doc)
        if doc["kind"] == "Gateway":
            out += predicted_objects(parse_gateway(RawObject(doc, "test", 0)), [])
            if written:
                doc["status"] = {"conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Resource accepted"},
                    {"type": "Programmed", "status": "True", "reason": "Programmed",
                     "message": "Resource programmed, assigned to service(s) "
                                "bookinfo-gateway-istio.ingress.svc.cluster.local:80"}],
                    "listeners": [{"name": "http", "attachedRoutes": 2, "conditions": []}]}
        if doc["kind"] == "HTTPRoute" and written:
            _accepted(doc, ("ingress", "bookinfo-gateway"),
                      team_resolved if doc["metadata"]["namespace"] == "team-a" else ("True", "ResolvedRefs"))
        out.append(doc)
    return out


@pytest.fixture
def gwapi_cluster(tmp_path: Path) -> Any:
    """The course cluster after `cluster up` (with the Gateway API CRDs and istiod's GatewayClasses) and
    lab 7's start state; returns (api, kubeconfig)."""
    with FakeApiServer(course_objects(gateway_api=True)) as api:
        api.add_all(_docs(LAB_DIR / "start"))
        yield api, api.write_kubeconfig(tmp_path / "kubeconfig")


class _Bookinfo(FakeGateway):
    """Bookinfo behind an ingress gateway: the product page, and the reviews service's JSON."""

    def answer(self, host: str, path: str) -> tuple[int, dict[str, str], bytes]:
        if host.split(":")[0] == "reviews.example.com" and path.startswith("/reviews/"):
            return 200, {"content-type": "application/json", "x-envoy-upstream-service-time": "5"}, \
                b'{"id": "0", "podname": "reviews-v1", "clustername": "null", "reviews": []}'
        return super().answer(host, path)


def test_live_reads_istiods_status_and_sends_real_requests(gwapi_cluster: Any) -> None:
    api, kubeconfig = gwapi_cluster
    api.add_all(_istiod_view())
    with _Bookinfo({"/productpage": "app"}, hosts=("bookinfo.example.com",)) as gw:
        api.set_portforward_backend(gw.address, 80)  # Envoy listens on the listener port itself
        result = run("lab07", context=CONTEXT, kubeconfig=kubeconfig)
    assert result.mode == "live"
    assert failing(result) == set(), [(c.id, c.message) for c in result.checks if not c.passed]
    assert result.score == result.max_score == 15
    assert result.check("productpage-reachable").message.startswith(
        "Live request: GET http://bookinfo.example.com/productpage via ingress/bookinfo-gateway-istio port 80")
    assert ("GET", "reviews.example.com", "/reviews/0") in gw.requests
    assert "istiod wrote Programmed=True" in result.check("status-written").message
    assert not api.write_requests(), "grading never writes to the cluster"


def test_live_trusts_the_written_status_over_the_prediction(gwapi_cluster: Any) -> None:
    """istiod says ResolvedRefs=False/RefNotPermitted for team-a's route (say a grant was deleted a moment
    ago): the live-only check reports istiod's words."""
    api, kubeconfig = gwapi_cluster
    api.add_all(_istiod_view(team_resolved=("False", "RefNotPermitted")))
    result = run("lab07", context=CONTEXT, kubeconfig=kubeconfig, only=["status-written"])
    chk = result.check("status-written")
    assert chk.status == "failed"
    assert "HTTPRoute team-a/reviews: istiod's written status says ResolvedRefs=False/RefNotPermitted" in chk.message
    assert "kubectl get httproute -n team-a reviews -o yaml" in chk.hints[0]


def test_live_without_written_status_says_istiod_has_not_written_it(gwapi_cluster: Any) -> None:
    api, kubeconfig = gwapi_cluster
    api.add_all(_istiod_view(written=False))
    chk = run("lab07", context=CONTEXT, kubeconfig=kubeconfig, only=["status-written"]).check("status-written")
    assert chk.status == "failed" and "no Programmed=True in the status istiod wrote (no status yet)" in chk.message


def test_a_snapshot_of_that_cluster_grades_the_same_without_the_live_only_check(gwapi_cluster: Any,
                                                                                tmp_path: Path) -> None:
    """`kubectl get ... -A -o yaml` of the same cluster: istiod's real Deployment and Service are read (not
    predicted), requests are traced (none recorded), and the written-status check is not evaluated."""
    api, _ = gwapi_cluster
    api.add_all(_istiod_view())
    kinds = ("Namespace", "Pod", "Deployment", "Service", "Gateway", "VirtualService", "GatewayClass", "HTTPRoute",
             "ReferenceGrant")
    snap = tmp_path / "snapshot.yaml"
    snap.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": served_objects(api, kinds)}))
    result = run("lab07", snapshot=str(snap))
    assert result.mode == "snapshot"
    assert failing(result) == {"status-written"}, [(c.id, c.message) for c in result.checks if not c.passed]
    assert result.check("status-written").status == "not-evaluated" and result.score == result.max_score == 14
    assert "the snapshot recorded no such request" in result.check("productpage-reachable").message


def test_live_cluster_without_the_crds_fails_ready_with_the_install_command(fake_api: FakeApiServer,
                                                                          fake_kubeconfig: str) -> None:
    chk = run("lab07", context=CONTEXT, kubeconfig=fake_kubeconfig, only=["ready"]).check("ready")
    assert chk.status == "failed" and "does not serve gateway.networking.k8s.io" in chk.message
    assert "cluster up" in chk.hints[1]


# --- lab setup / solve / reset 7 ------------------------------------------------------------------------------
def _lab(kubeconfig: str, capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    rc = main(["lab", *argv, "--kubeconfig", kubeconfig, "--timeout", "5"])
    out, err = capsys.readouterr()
    return rc, out + err


def test_lab_setup_solve_reset_7(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with FakeApiServer(course_objects(gateway_api=True)) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        rc, out = _lab(kubeconfig, capsys, "setup", "7")
        assert rc == 0, out
        assert api.find("Namespace", "", "ingress") is not None and api.find("Namespace", "", "team-a") is not None
        rc, out = _lab(kubeconfig, capsys, "solve", "7")
        assert rc == 0, out
        created = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
                   for kind in ("Gateway", "HTTPRoute", "ReferenceGrant") for o in api.objects(kind)}
        assert created == {("Gateway", "ingress", "bookinfo-gateway"), ("HTTPRoute", "default", "bookinfo"),
                           ("HTTPRoute", "team-a", "reviews"),
                           ("ReferenceGrant", "default", "team-a-routes-to-reviews")}
        gw = api.find("Gateway", "ingress", "bookinfo-gateway")
        assert gw["apiVersion"] == "gateway.networking.k8s.io/v1"
        assert gw["metadata"]["labels"]["istio-gateway-course/lab"] == "07"
        # istiod deploys the gateway, copying the Gateway's labels (the course's among them) onto what it
        # creates (kube-gateway.yaml; PILOT_ENABLE_GATEWAY_API_COPY_LABELS_ANNOTATIONS is on by default).
        api.add_all(predicted_objects(parse_gateway(RawObject(gw, "cluster", 0)), []))
        assert api.find("Deployment", "ingress", "bookinfo-gateway-istio") is not None
        rc, out = _lab(kubeconfig, capsys, "reset", "7")
        assert rc == 0, out
        left = [o for kind in ("Gateway", "HTTPRoute", "ReferenceGrant", "Deployment", "Service")
                for o in api.objects(kind, "ingress") + api.objects(kind, "team-a")]
        assert left == [] and api.objects("ReferenceGrant") == []
        assert api.find("Namespace", "", "team-a") is None and api.find("Namespace", "", "ingress") is None
        assert api.find("GatewayClass", "", "istio") is not None, "istiod's class is not the lab's to remove"


class _Broken(_Bookinfo):
    """The gateway answers reviews.example.com itself with 500 (say the backendRef's port is wrong)."""

    def answer(self, host: str, path: str) -> tuple[int, dict[str, str], bytes]:
        if host.split(":")[0] == "reviews.example.com":
            return 500, {}, b""
        return super().answer(host, path)


def test_live_500_from_the_gateway_points_at_the_backend_refs(gwapi_cluster: Any) -> None:
    api, kubeconfig = gwapi_cluster
    api.add_all(_istiod_view())
    with _Broken({"/productpage": "app"}, hosts=("bookinfo.example.com",)) as gw:
        api.set_portforward_backend(gw.address, 80)
        chk = run("lab07", context=CONTEXT, kubeconfig=kubeconfig, only=["reviews-reachable"]).check(
            "reviews-reachable")
    assert chk.status == "failed" and "HTTP 500" in chk.message
    assert "backendRefs of HTTPRoute team-a/reviews" in chk.hints[0]


def test_port_forward_advice_does_not_use_the_host_port_kind_already_maps() -> None:
    from graders.analyzers import analyze
    from graders.sources import load_state

    state = load_state([str(LAB_DIR / "start"), str(LAB_DIR / "wrong" / "loadbalancer-on-kind")])
    [f] = [f for f in analyze(state) if f.code == "GWAPI-NOT-PROGRAMMED"]
    # Host port 8080 is kind's mapping to the classic gateway (labs/cluster/kind-config.yaml.tmpl).
    assert "8080:80" not in f.hint and "svc/bookinfo-gateway-istio 8088:80" in f.hint


def test_lab_solve_7_on_a_cluster_without_the_crds_says_to_install_them(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    with FakeApiServer() as api:  # the course cluster from before `cluster up` installed the Gateway API
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        assert _lab(kubeconfig, capsys, "setup", "7")[0] == 0
        rc, out = _lab(kubeconfig, capsys, "solve", "7")
    assert rc == 2
    assert ("the cluster does not serve gateway.networking.k8s.io/v1 HTTPRoute (needed for HTTPRoute "
            "default/bookinfo); are the Gateway API CRDs installed? `python -m graders cluster up` installs v1.5.1"
            ) in out
