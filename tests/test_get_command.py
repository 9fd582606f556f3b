"""``python -m graders get``: kubectl's tables over the simulated cluster, a snapshot and a live cluster
(the real kubernetes client against tests/fakeapi.py), and the hints' ``Context.look`` commands run."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fakeapi import FakeApiServer

from graders.cli import main
from graders.kubeview import human_duration, parse_selector, selector_matches, tabulate

REPO = Path(__file__).resolve().parents[1]
REFERENCE = str(REPO / "labs" / "lab01" / "solutions" / "reference")


def get(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["get", *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


def test_pods_with_labels_in_a_namespace_like_kubectl(capsys):
    code, out, err = get(capsys, "pods", "-n", "istio-system", "--show-labels")
    assert code == 0
    assert err.strip().splitlines() == [err.strip()] and "simulated" in err, "one line on stderr says simulated"
    assert "simulated" not in out
    lines = out.rstrip("\n").splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"]
    # kubectl's tabwriter: columns start where the header's do, padded by 3 to the widest cell.
    assert lines[0].index("READY") == max(len(r[0]) for r in rows(out)) + 3
    ingress = next(r for r in rows(out)[1:] if r[0].startswith("istio-ingressgateway-"))
    assert ingress[1:5] == ["1/1", "Running", "0", "<unknown>"]
    assert "istio=ingressgateway" in ingress[5].split(",") and "app=istio-ingressgateway" in ingress[5]


def test_bookinfo_pods_carry_the_injected_sidecar(capsys):
    _, out, _ = get(capsys, "pods", "-l", "app=productpage")
    header, pod = rows(out)
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pod[0].startswith("productpage-v1-") and pod[1] == "2/2"


def test_services_show_ports_and_node_ports(capsys):
    code, out, _ = get(capsys, "svc", "-n", "istio-system")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    ingress = next(r for r in rows(out) if r[0] == "istio-ingressgateway")
    assert ingress[1] == "NodePort" and "80:30080/TCP" in ingress[4].split(",")


def test_several_kinds_in_all_namespaces_with_the_learners_files(capsys):
    code, out, err = get(capsys, "gateway,virtualservice", "-A", REFERENCE)
    assert code == 0 and REFERENCE in err
    gw_table, vs_table = out.strip().split("\n\n")
    assert rows(gw_table)[0] == ["NAMESPACE", "NAME", "AGE"]
    assert rows(gw_table)[1][:2] == ["default", "gateway.networking.istio.io/bookinfo-gateway"]
    assert rows(vs_table)[0] == ["NAMESPACE", "NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert rows(vs_table)[1][1:4] == ["virtualservice.networking.istio.io/bookinfo", '["default/bookinfo-gateway"]',
                                      '["bookinfo.example.com"]']


def test_yaml_json_wide_and_name_outputs(capsys):
    _, out, _ = get(capsys, "deploy", "-n", "istio-system", "-o", "yaml")
    doc = yaml.safe_load(out)
    assert doc["kind"] == "List" and {i["metadata"]["name"] for i in doc["items"]} >= {"istiod", "istio-ingressgateway"}
    _, out, _ = get(capsys, "svc", "productpage", "-o", "json")
    obj = json.loads(out)
    assert obj["kind"] == "Service" and obj["metadata"] == {**obj["metadata"], "name": "productpage",
                                                            "namespace": "default"}
    _, out, _ = get(capsys, "deploy", "-o", "wide")
    assert rows(out)[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert next(r for r in rows(out) if r[0] == "reviews-v2")[1] == "1/1"
    _, out, _ = get(capsys, "svc/productpage", "svc/details", "-o", "name")
    assert out.split() == ["service/details", "service/productpage"]


def test_nothing_found_goes_to_stderr(capsys):
    code, out, err = get(capsys, "pods", "-n", "nowhere")
    assert (code, out) == (0, "") and err.strip().endswith("No resources found in nowhere namespace.")
    code, out, err = get(capsys, "pods", "-A", "-l", "app=nothing")
    assert (code, out) == (0, "") and err.strip().endswith("No resources found")


def test_a_missing_name_is_not_found(capsys):
    code, out, err = get(capsys, "svc", "nope")
    assert (code, out) == (1, "") and 'Error from server (NotFound): services "nope" not found' in err


@pytest.mark.parametrize(("args", "says"), [
    (["secrets"], "never read Secrets"),
    (["configmaps", "-A"], "never read Secrets or ConfigMaps"),
    (["widgets"], "no resource type 'widgets'"),
    (["pods", "-l", "app in (a,b)"], "not key=value"),
    (["pods", "labs/lab01/nope.yaml"], "no such file or folder"),
    (["pods", "--no-baseline", "--snapshot", "x.yaml"], "only applies to the simulated cluster"),
    ([], "say what to get"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, says):
    code, out, err = get(capsys, *args)
    assert code == 2 and out == "" and says in err and len(err.strip().splitlines()) == 1


def test_a_folder_named_like_a_type_is_still_the_type(capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the repository has a deploy/ folder
    code, out, _ = get(capsys, "deploy", "-n", "istio-system")
    assert code == 0 and rows(out)[0][0] == "NAME" and "istiod" in out


def test_snapshot_mode_is_labelled_and_shows_recorded_objects(capsys, tmp_path):
    created = (datetime.now(UTC) - timedelta(minutes=5, seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    snap = tmp_path / "snap.yaml"
    snap.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop",
                                                             "creationTimestamp": created},
         "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.20", "ports": [{"port": 80, "nodePort": 31000}]}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token", "namespace": "shop"}}]}))
    code, out, err = get(capsys, "svc", "-n", "shop", "--snapshot", str(snap))
    assert code == 0 and "snapshot" in err and str(snap) in err
    assert rows(out)[1] == ["web", "LoadBalancer", "10.96.0.20", "<pending>", "80:31000/TCP", "5m3s"]
    code, out, err = get(capsys, "secret", "token", "-n", "shop", "--snapshot", str(snap))
    assert (code, out) == (2, "") and "never read Secrets" in err


def test_live_cluster_through_the_kubernetes_client(capsys, fake_api: FakeApiServer, fake_kubeconfig: str):
    code, out, err = get(capsys, "pods", "-n", "istio-system", "--context", "kind-istio-lab",
                         "--kubeconfig", fake_kubeconfig, "-o", "wide")
    assert code == 0 and err == "", "a live view is kubectl's: no banner"
    head, *pods = rows(out)
    assert head == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS",
                    "GATES"]
    ingress = next(p for p in pods if p[0].startswith("istio-ingressgateway-"))
    assert ingress[1:3] == ["1/1", "Running"] and ingress[4] != "<unknown>" and ingress[5].startswith("10.244.")
    code, out, _ = get(capsys, "svc", "productpage", "--context", "kind-istio-lab", "--kubeconfig", fake_kubeconfig)
    assert rows(out)[1][:3] == ["productpage", "ClusterIP", rows(out)[1][2]] and rows(out)[1][2].startswith("10.96.")
    assert fake_api.write_requests() == [], "read-only"
    assert not [r for r in fake_api.requests if r.resource in ("secrets", "configmaps")], "never Secrets"


def test_hints_commands_run_and_show_what_the_check_saw(capsys, monkeypatch):
    """Context.look's off-cluster command is a valid `graders get` over the same files the check graded."""
    from graders.checks import Context
    from graders.labs import get as get_lab
    from graders.labs import lab_dir, resolve_target
    from graders.sources import load_state

    monkeypatch.chdir(REPO)
    lab = get_lab("lab01")
    paths, _ = resolve_target(lab, [REFERENCE], None, None, None, True)
    ctx = Context(load_state(paths))
    for args in ("get pods -n istio-system --show-labels", "get svc productpage", "-n istio-system get svc",
                 "get gateway,virtualservice -A"):
        command = ctx.look(args)
        assert command.startswith("`python -m graders get ") and command.endswith("`") and " get get " not in command
        argv = shlex.split(command.strip("`"))[4:]
        assert str(Path(REFERENCE).relative_to(REPO)) in argv
        code, out, _ = get(capsys, *argv)
        assert code == 0 and out.startswith(("NAME", "NAMESPACE")), command
    assert lab_dir(lab).name == "lab01"


def test_human_duration_is_kubectls():
    cases = {0: "0s", 59: "59s", 119: "119s", 125: "2m5s", 300: "5m", 600: "10m", 179 * 60: "179m",
             3 * 3600: "3h", 3 * 3600 + 60: "3h1m", 9 * 3600: "9h", 50 * 3600: "2d2h", 48 * 3600: "2d",
             10 * 86400: "10d", 3 * 365 * 86400: "3y", 3 * 365 * 86400 + 86400: "3y1d", 9 * 365 * 86400: "9y",
             -1: "0s", -5: "<invalid>"}
    assert {s: human_duration(s) for s in cases} == cases


def test_selectors_and_table_layout():
    reqs = parse_selector("app=web,tier!=db,env,!old")
    assert selector_matches(reqs, {"app": "web", "env": "x"})
    assert not selector_matches(reqs, {"app": "web", "env": "x", "old": "1"})
    assert not selector_matches(reqs, {"app": "web", "tier": "db", "env": "x"})
    assert tabulate([["NAME", "AGE"], ["a", "1s"]]) == "NAME   AGE\na      1s"
    assert tabulate([["A", "B", "C"], ["x", "y", "z"]]) == "A     B     C\nx     y     z"


def test_look_names_the_snapshot_and_says_kubectl_when_live(tmp_path, monkeypatch):
    from graders.checks import Context
    from graders.state import State

    monkeypatch.chdir(tmp_path)
    snap = Context(State(mode="snapshot", sources=(str(tmp_path / "my snap.yaml"),)))
    assert snap.look("get svc -n istio-system") == \
        f"`python -m graders get svc -n istio-system --snapshot '{tmp_path / 'my snap.yaml'}'`"
    live = Context(State(mode="live", sources=("context:kind-istio-lab",)))
    assert live.look("get svc -n istio-system") == "`kubectl get svc -n istio-system`"
