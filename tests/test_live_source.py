"""Live mode: the real kubernetes client reading the fake API server over HTTP."""

from __future__ import annotations

import json
import time
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from fakeapi import (
    STATE_RECORD_FIELDS,
    FakeApiServer,
    bookinfo_routing,
    dead_url,
    served_objects,
    state_records,
    write_kubeconfig_for,
)

from graders.cli import main
from graders.errors import ClusterError
from graders.sources import load_state
from graders.sources.live import ISTIO_KINDS, read_cluster, read_pod_logs
from graders.state import State

CONTEXT = "kind-istio-lab"


def test_reads_every_kind_once_cluster_wide_with_get_only(fake_api: FakeApiServer, fake_kubeconfig: str) -> None:
    fake_api.add_all(bookinfo_routing())
    read = read_cluster(CONTEXT, fake_kubeconfig)

    assert read.istio_installed and read.context == CONTEXT and read.server == fake_api.url
    assert {r.method for r in fake_api.requests} == {"GET"}
    lists = fake_api.calls("list")
    assert sorted(r.path for r in lists) == sorted([
        "/api/v1/namespaces", "/api/v1/pods", "/api/v1/services", "/apis/apps/v1/deployments",
        *(f"/apis/networking.istio.io/v1/{k.plural}" for k in ISTIO_KINDS)])
    assert all(r.namespace is None for r in lists), "lists must be cluster-wide"
    assert fake_api.calls("get") == [], "no per-object GETs"
    assert not any(r.resource in ("secrets", "configmaps") for r in fake_api.requests)
    # Items come back with kind/apiVersion set (LIST items of built-in kinds lack them).
    kinds = {(o["apiVersion"], o["kind"]) for o in read.objects}
    assert ("v1", "Pod") in kinds and ("apps/v1", "Deployment") in kinds
    assert ("networking.istio.io/v1", "Gateway") in kinds and ("networking.istio.io/v1", "VirtualService") in kinds
    assert len(read.objects) == len(served_objects(fake_api))
    assert not any("managedFields" in o["metadata"] for o in read.objects)


def test_live_state_equals_snapshot_state_of_the_same_objects(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                              tmp_path: Path) -> None:
    fake_api.add_all(bookinfo_routing())
    fake_api.set_ready("default", "ratings-v1", False)
    snapshot = tmp_path / "kubectl-get.yaml"
    snapshot.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": served_objects(fake_api)}))

    live = load_state(context=CONTEXT, kubeconfig=fake_kubeconfig)
    snap = load_state(snapshot=str(snapshot))

    assert live.mode == "live" and snap.mode == "snapshot"
    assert state_records(live) == state_records(snap)
    assert len(live.gateways) == 1 and len(live.virtual_services) == 1
    ratings = [p for p in live.pods if p.owner == "ratings-v1"]
    assert ratings and not any(p.ready for p in ratings) and not any(p.from_template for p in live.pods)


def test_falls_back_to_an_older_istio_api_version(fake_api: FakeApiServer, fake_kubeconfig: str) -> None:
    fake_api.add_all(bookinfo_routing())
    for crd in fake_api.cluster.store[("apiextensions.k8s.io", "customresourcedefinitions")].values():
        crd["spec"]["versions"] = [v for v in crd["spec"]["versions"] if v["name"] != "v1"]

    read = read_cluster(CONTEXT, fake_kubeconfig)

    assert read.istio_installed
    assert {r.path for r in fake_api.calls("list") if r.group == "networking.istio.io"} == {
        f"/apis/networking.istio.io/v1beta1/{k.plural}" for k in ISTIO_KINDS}
    gateways = [o for o in read.objects if o["kind"] == "Gateway"]
    assert [g["apiVersion"] for g in gateways] == ["networking.istio.io/v1beta1"]
    state = load_state(context=CONTEXT, kubeconfig=fake_kubeconfig)
    assert [g.meta.name for g in state.gateways] == ["bookinfo-gateway"] and not state.load_findings


def test_istio_operator_is_read_only_when_its_crd_exists(tmp_path: Path) -> None:
    with FakeApiServer(operator_crd=True) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "config")
        state = load_state(context=CONTEXT, kubeconfig=kubeconfig)
        assert [o.meta.name for o in state.istio_operators] == ["istio-lab"]
        assert [r.path for r in api.calls("list") if r.group == "install.istio.io"] == [
            "/apis/install.istio.io/v1alpha1/istiooperators"]
    with FakeApiServer() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "config2")
        state = load_state(context=CONTEXT, kubeconfig=kubeconfig)
        assert state.istio_operators == ()
        assert [r.status for r in api.requests if r.path == "/apis/install.istio.io"] == [404]


def test_missing_istio_crds_mean_istio_not_installed(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fake_api.remove_istio()
    read = read_cluster(CONTEXT, fake_kubeconfig)
    assert read.istio_installed is False
    assert not any(r.path.startswith("/apis/networking.istio.io/") for r in fake_api.requests)

    code = main(["analyze", "--context", CONTEXT, "--kubeconfig", fake_kubeconfig, "-o", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [f["code"] for f in report["findings"]] == ["ISTIO-NOT-INSTALLED"]
    assert main(["analyze", "--context", CONTEXT, "--kubeconfig", fake_kubeconfig]) == 1
    assert "has no Istio networking CRDs (networking.istio.io)" in " ".join(capsys.readouterr().out.split())


def test_forbidden_names_the_missing_permission(fake_api: FakeApiServer, fake_kubeconfig: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fake_api.forbid("virtualservices", "networking.istio.io")
    with pytest.raises(ClusterError) as err:
        read_cluster(CONTEXT, fake_kubeconfig)
    msg = str(err.value)
    assert "`list` on resource 'virtualservices' in API group networking.istio.io" in msg
    assert "deploy/rbac/grader-readonly.yaml" in msg and "\n" not in msg

    assert main(["analyze", "--context", CONTEXT, "--kubeconfig", fake_kubeconfig]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "virtualservices" in captured.err and "Traceback" not in captured.err


def test_the_rbac_file_grants_exactly_what_is_read(fake_api: FakeApiServer, fake_kubeconfig: str) -> None:
    rbac = Path(__file__).resolve().parents[1] / "deploy" / "rbac" / "grader-readonly.yaml"
    cluster_role, log_role = [d for d in yaml.safe_load_all(rbac.read_text()) if d]

    def granted(role: dict) -> set[tuple[str, str, str]]:
        return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
                for v in rule["verbs"]}

    everywhere = granted(cluster_role)
    assert cluster_role["kind"] == "ClusterRole"
    assert not any(v in ("update", "patch", "delete", "deletecollection", "watch") for _, _, v in everywhere)
    assert not any(r in ("secrets", "configmaps", "pods/log") for _, r, _ in everywhere)
    read_cluster(CONTEXT, fake_kubeconfig)
    for r in fake_api.calls("list"):
        assert (r.group, r.resource, "list") in everywhere, r.path
    # Container logs: one namespaced Role, get only, and only in istio-system (lab 5's egress gateway).
    assert (log_role["kind"], log_role["metadata"]["namespace"]) == ("Role", "istio-system")
    assert granted(log_role) == {("", "pods/log", "get")}
    pods = [p["metadata"]["name"] for p in fake_api.objects("Pod", "istio-system")
            if (p["metadata"].get("labels") or {}).get("istio") == "egressgateway"]
    for pod in pods:
        fake_api.set_log("istio-system", pod, "istio-proxy", "a\nb\nc\n")
    fake_api.clear_requests()
    logs = read_pod_logs(CONTEXT, fake_kubeconfig, "istio-system", "istio=egressgateway", "istio-proxy", 2)
    assert logs == [(f"istio-system/{pod}", "b\nc\n") for pod in pods] and pods
    calls = [(c.verb, c.resource, c.namespace, c.path.rsplit("/", 1)[-1]) for c in fake_api.calls()]
    assert calls == [("list", "pods", "istio-system", "pods")] + [("get", "pods", "istio-system", "log")] * len(pods)


def test_unreachable_server_fails_fast_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = write_kubeconfig_for(tmp_path / "config", {CONTEXT: dead_url()})
    started = time.monotonic()
    with pytest.raises(ClusterError) as err:
        read_cluster(CONTEXT, kubeconfig)
    assert time.monotonic() - started < 10  # upper bound only: the timeouts and retries are bounded
    assert "cannot reach the Kubernetes API server" in str(err.value) and "connection refused" in str(err.value)

    assert main(["analyze", "--context", CONTEXT, "--kubeconfig", kubeconfig]) == 2
    assert capsys.readouterr().err.startswith("error: cannot reach the Kubernetes API server at http://127.0.0.1:")


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # accepts connections (kernel backlog) but never answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        kubeconfig = write_kubeconfig_for(tmp_path / "config", {CONTEXT: url})
        started = time.monotonic()
        with pytest.raises(ClusterError, match=r"no answer within 1 s"):
            read_cluster(CONTEXT, kubeconfig, timeout=1.0)
        assert time.monotonic() - started < 5
    finally:
        silent.close()


def test_a_server_slow_on_every_request_hits_the_overall_budget(fake_api: FakeApiServer,
                                                                fake_kubeconfig: str) -> None:
    fake_api.delay = 0.3  # well under the 2 s per-request timeout, but 10 requests exceed a 1.5 s budget
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"gave up after 1\.5 s \(--deadline 1\.5\): reading .* took too long"):
        read_cluster(CONTEXT, fake_kubeconfig, timeout=2.0, budget=1.5)
    assert time.monotonic() - started < 5
    assert 3 <= len(fake_api.requests) < 10


def test_invalid_kubeconfig_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "config"
    bad.write_text("apiVersion: v1\nclusters: [\n")
    with pytest.raises(ClusterError, match="is not valid YAML"):
        read_cluster(CONTEXT, str(bad))


def test_tls_error_is_one_line(fake_api: FakeApiServer, tmp_path: Path) -> None:
    https_url = fake_api.url.replace("http://", "https://")  # the fake speaks plain HTTP
    kubeconfig = write_kubeconfig_for(tmp_path / "config", {CONTEXT: https_url})
    with pytest.raises(ClusterError, match="TLS handshake failed"):
        read_cluster(CONTEXT, kubeconfig)


def test_unknown_context_lists_the_available_ones(fake_api: FakeApiServer, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = fake_api.write_kubeconfig(tmp_path / "config", extra={"kind-other": dead_url()})
    assert main(["analyze", "--context", "istio-lab", "--kubeconfig", kubeconfig]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'istio-lab' is not in kubeconfig" in err and "kind-istio-lab, kind-other" in err
    assert "kind-<name>" in err
    assert fake_api.requests == []


def test_missing_kubeconfig_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config either
    assert main(["analyze", "--context", CONTEXT]) == 2
    err = capsys.readouterr().err
    assert "no kubeconfig at" in err and "python -m graders cluster up" in err


def test_kubeconfig_env_is_read_at_call_time_and_default_config_untouched(
        fake_api: FakeApiServer, fake_kubeconfig: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes import client

    before = client.Configuration.get_default_copy().host
    monkeypatch.setenv("KUBECONFIG", fake_kubeconfig)
    read = read_cluster(None, None)  # current context of $KUBECONFIG
    assert read.context == CONTEXT and read.server == fake_api.url
    assert client.Configuration.get_default_copy().host == before


def test_rejected_credentials(fake_api: FakeApiServer, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig_for(tmp_path / "config", {CONTEXT: fake_api.url}, token="stale-token")
    with pytest.raises(ClusterError, match="401 Unauthorized"):
        read_cluster(CONTEXT, kubeconfig)


def test_odd_objects_become_findings_not_crashes(fake_api: FakeApiServer, fake_kubeconfig: str) -> None:
    fake_api.add({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "odd", "namespace": "default"},
                  "spec": {"selector": {"app": "odd"}, "ports": [{"port": "http", "targetPort": 80}]}})
    state = load_state(context=CONTEXT, kubeconfig=fake_kubeconfig)
    assert [f.code for f in state.load_findings] == ["MANIFEST-INVALID"]
    assert "odd" not in {s.meta.name for s in state.services}
    assert {f.name for f in fields(State)} >= set(STATE_RECORD_FIELDS)


def _kind_context_or_skip() -> None:
    from graders.sources.live import resolve_context

    try:
        resolve_context(CONTEXT, None)
    except ClusterError as err:
        pytest.skip(f"no kind cluster for the course here ({err})")


@pytest.mark.kind
def test_reads_the_real_course_cluster() -> None:
    _kind_context_or_skip()
    state = load_state(context=CONTEXT)
    assert state.mode == "live" and state.istio_installed
    gateway = state.service("istio-system", "istio-ingressgateway")
    assert gateway is not None and gateway.type == "NodePort"
    assert state.ready_pods_for(gateway), "the ingress gateway has no Ready pod"
    assert state.service("default", "productpage") is not None


def test_client_certificate_users_like_kinds_are_not_taken_for_exec_plugins(tmp_path: Path) -> None:
    """kind's kubeconfig authenticates with a client certificate: no token, no exec section."""
    import base64

    with FakeApiServer(token=None) as api:
        cfg = yaml.safe_load(Path(api.write_kubeconfig(tmp_path / "config")).read_text())
        cfg["users"][0]["user"] = {"client-certificate-data": base64.b64encode(b"cert").decode(),
                                   "client-key-data": base64.b64encode(b"key").decode()}
        (tmp_path / "config").write_text(yaml.safe_dump(cfg))
        read = read_cluster(CONTEXT, str(tmp_path / "config"))
    assert read.istio_installed and read.objects
