"""Loading state: bad and hostile input, snapshots from plain kubectl, IstioOperator rendering,
overlay semantics, and the analyze command's contract (exit codes, JSON)."""

from __future__ import annotations

import json
import time

import pytest
from engine_helpers import PRODUCTPAGE_TWO_PORTS, course_operator, docs, gateway, state_of, virtual_service, write

from graders import yamlio
from graders.cli import main
from graders.errors import InputError
from graders.sources import load_state
from graders.sources.istio_install import render


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# --- bad input: one line, exit 2, never a traceback -----------------------------------------------
def test_yaml_syntax_error_names_file_line_and_column(tmp_path, capsys):
    path = write(tmp_path, "bad.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n")
    code, out, err = run_cli(capsys, "analyze", path)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {path}:") and "YAML syntax error" in err and err.count("\n") == 1


def test_control_character_is_one_line_with_its_position(tmp_path, capsys):
    path = write(tmp_path, "ctl.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\x07b\n")
    code, out, err = run_cli(capsys, "analyze", path)
    assert code == 2 and out == ""
    assert err == (f"error: {path}:4:10: character U+0007 is not allowed in YAML (control characters are not); "
                   "delete it or write it as an escape inside double quotes\n")


@pytest.fixture
def pure_python_yaml(monkeypatch):
    """graders.yamlio as it is on a PyYAML built without libyaml."""
    import importlib

    import yaml

    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    fallback = importlib.reload(yamlio)
    assert yaml.cyaml.CParser not in fallback._LimitedLoader.__mro__
    yield fallback
    monkeypatch.undo()
    importlib.reload(yamlio)


BAD_YAML = ["a: b: c\n", "a:\n\t- b\n", "key: [1, 2\n", "a: 'x\n", "x: \x07\n", "a: *nope\n", "&a [1, *a]\n",
            "{a: 1}}\n", "a: !!python/object:os.system x\n"]


def test_without_libyaml_the_same_objects_and_error_positions(pure_python_yaml):
    """The C parser is only a speed-up: a machine without it reads the same objects and reports
    errors at the same file:line:column."""
    from batch_fixtures import make_snapshot, solution_dir

    text = make_snapshot(solution_dir())
    assert list(pure_python_yaml._parse_text(text, "s.yaml", 0)) == list(yamlio_fast()._parse_text(text, "s.yaml", 0))

    def where(module, text: str) -> str:
        with pytest.raises(InputError) as err:
            list(module._parse_text(text, "f.yaml", 0))
        assert "\n" not in str(err.value)
        return str(err.value).split(": ")[0]

    assert [where(pure_python_yaml, t) for t in BAD_YAML] == [where(yamlio_fast(), t) for t in BAD_YAML]


def yamlio_fast():
    """A second copy of graders.yamlio on libyaml, next to the reloaded pure-Python one."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("yamlio_libyaml", yamlio.__file__)
    module = importlib.util.module_from_spec(spec)
    import yaml

    saved, yaml.__with_libyaml__ = yaml.__with_libyaml__, True
    try:
        spec.loader.exec_module(module)
    finally:
        yaml.__with_libyaml__ = saved
    assert yaml.cyaml.CParser in module._LimitedLoader.__mro__
    return module


def test_alias_bomb_is_refused_quickly(tmp_path, capsys):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    start = time.monotonic()
    code, _, err = run_cli(capsys, "analyze", path)
    assert code == 2 and "alias bomb" in err and time.monotonic() - start < 5


def test_recursive_alias_is_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "analyze", write(tmp_path, "rec.yaml", "a: &a [1, *a]\n"))
    assert code == 2 and "alias bomb" in err


def test_huge_file_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(yamlio, "MAX_FILE_BYTES", 1000)
    path = write(tmp_path, "big.yaml", "# " + "x" * 2000 + "\n")
    code, _, err = run_cli(capsys, "analyze", path)
    assert code == 2 and "limit" in err


def test_not_utf8_and_missing_paths(tmp_path, capsys):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    assert run_cli(capsys, "analyze", str(bad))[0] == 2
    assert run_cli(capsys, "analyze", str(tmp_path / "missing.yaml"))[0] == 2
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    code, _, err = run_cli(capsys, "analyze", str(empty))
    assert code == 2 and "no .yaml" in err


def test_no_baseline_needs_paths(capsys):
    code, _, err = run_cli(capsys, "analyze", "--no-baseline")
    assert code == 2 and "needs at least one PATH" in err


def test_unknown_option_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--bogus"])
    assert exc.value.code == 2
    assert "--bogus" in capsys.readouterr().err


# --- analyze contract ------------------------------------------------------------------------------
def test_analyze_exit_codes_follow_fail_on(tmp_path, capsys):
    path = write(tmp_path, "egress.yaml", docs(gateway(selector="egressgateway", port=80), virtual_service()))
    assert run_cli(capsys, "analyze", path)[0] == 0  # only a warning
    assert run_cli(capsys, "analyze", path, "--fail-on", "warning")[0] == 1
    bad = write(tmp_path, "bad.yaml", docs(gateway(port=7070), virtual_service()))
    assert run_cli(capsys, "analyze", bad)[0] == 1
    assert run_cli(capsys, "analyze", bad, "--fail-on", "never")[0] == 0


def test_analyze_json_contract(tmp_path, capsys):
    path = write(tmp_path, "a.yaml", docs(gateway(selector="ingress"), virtual_service()))
    code, out, _ = run_cli(capsys, "analyze", path, "-o", "json")
    data = json.loads(out)
    assert code == 1 and data["mode"] == "simulated"
    assert [f["code"] for f in data["findings"]] == ["GW-SELECTOR-NO-WORKLOAD"]
    assert set(data["findings"][0]) >= {"code", "severity", "message", "hint", "resources", "istio_code",
                                         "kiali_code"}
    assert data["summary"] == {"error": 1, "warning": 0, "info": 0}


def test_text_output_is_labelled_simulated(tmp_path, capsys):
    path = write(tmp_path, "a.yaml", docs(gateway(), virtual_service()))
    code, out, _ = run_cli(capsys, "analyze", path)
    assert code == 0 and "SIMULATED" in out and "No problems found." in out and "\033[" not in out


# --- snapshots -------------------------------------------------------------------------------------
def test_plain_kubectl_list_is_a_snapshot_and_templates_stand_in_for_pods(tmp_path):
    items = render({"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
                    "metadata": {"name": "x"}, "spec": {"profile": "demo"}})
    for i, item in enumerate(items):
        item["metadata"]["creationTimestamp"] = f"2026-05-01T10:00:{i:02d}Z"
        if item["kind"] == "Deployment":
            item["status"] = {"replicas": 1, "readyReplicas": 1}
    snap = tmp_path / "kubectl.yaml"
    snap.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    state = load_state(snapshot=str(snap))
    assert state.mode == "snapshot" and state.istio_installed
    gw_pods = [p for p in state.pods if p.is_gateway]
    assert {p.owner for p in gw_pods} == {"istio-ingressgateway", "istio-egressgateway"}
    assert all(p.from_template and p.ready for p in gw_pods)
    ingress = state.service("istio-system", "istio-ingressgateway")
    assert ingress.type == "LoadBalancer" and [p.port for p in ingress.ports] == [15021, 80, 443, 31400, 15443]


def test_unready_deployment_status_makes_template_pod_unready(tmp_path):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "productpage-v1", "namespace": "default"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "productpage"}},
                    "template": {"metadata": {"labels": {"app": "productpage"}},
                                 "spec": {"containers": [{"name": "p"}]}}},
           "status": {"replicas": 1, "readyReplicas": 0}}
    snap = tmp_path / "s.yaml"
    snap.write_text(json.dumps(dep))
    (pod,) = load_state(snapshot=str(snap)).pods
    assert pod.from_template and not pod.ready


def test_snapshot_with_malformed_probe_is_one_line(tmp_path, capsys):
    snap = write(tmp_path, "s.yaml", "apiVersion: v1\nkind: List\nitems: []\nx-graders: {probes: [{port: x}]}\n")
    code, _, err = run_cli(capsys, "analyze", "--snapshot", snap)
    assert code == 2 and "probe is malformed" in err


# --- IstioOperator rendering and overlays ------------------------------------------------------------
def test_baseline_matches_the_course_install():
    state = load_state()
    ingress = state.service("istio-system", "istio-ingressgateway")
    assert ingress.type == "NodePort"
    assert [(p.port, p.target_port, p.node_port) for p in ingress.ports] == [
        (15021, 15021, 30021), (80, 8080, 30080), (443, 8443, 30443)]
    assert state.service("istio-system", "istio-egressgateway").type == "ClusterIP"
    assert {s.meta.name for s in state.services_by_ns["default"]} == {"details", "ratings", "reviews", "productpage"}
    assert state.outbound_traffic_policy == "ALLOW_ANY"


def test_operator_label_is_merged_over_the_chart_defaults():
    objs = render({"spec": {"profile": "empty", "components": {"ingressGateways": [
        {"name": "gw2", "enabled": True, "label": {"app": "gw2"}}]}}})
    (dep,) = [o for o in objs if o["kind"] == "Deployment"]
    assert dep["spec"]["template"]["metadata"]["labels"]["istio"] == "ingressgateway"  # the inherited trap
    assert dep["spec"]["template"]["metadata"]["labels"]["app"] == "gw2"
    assert not [o for o in objs if o["metadata"]["name"] == "istiod"]  # profile empty: no control plane


def test_learner_overlay_replaces_baseline_object_but_keeps_its_age(tmp_path):
    base = load_state()
    state = state_of(tmp_path, PRODUCTPAGE_TWO_PORTS)
    new, old = state.service("default", "productpage"), base.service("default", "productpage")
    assert [p.port for p in new.ports] == [9080, 9090]
    assert new.meta.created == old.meta.created


def test_mesh_policy_comes_from_the_control_plane_operator(tmp_path):
    iop = course_operator(outbound="REGISTRY_ONLY")
    assert state_of(tmp_path, iop).outbound_traffic_policy == "REGISTRY_ONLY"


def test_load_state_rejects_two_targets():
    with pytest.raises(InputError):
        load_state(snapshot="a.yaml", context="kind-istio-lab")


# --- kind: List given as a PATH (issue #10 item 1) ----------------------------------------------------
def _as_list(*objects: dict) -> str:
    """A ``kind: List`` as ``kubectl get -o yaml`` writes it, edited by hand: no creationTimestamp."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})


def _lab1_reference_objects() -> list[dict]:
    from pathlib import Path

    from graders.yamlio import load_paths

    root = Path(__file__).resolve().parents[1] / "labs" / "lab01" / "solutions" / "reference"
    return [r.obj for r in load_paths([str(root)])]


@pytest.mark.parametrize("command", [
    ["analyze"], ["trace", "--path", "/productpage", "--host", "bookinfo.example.com"], ["check", "1"]])
def test_a_list_file_as_a_path_is_read_not_crashed_on(tmp_path, capsys, command):
    """The synthetic age of a List item given as a PATH overflowed datetime (OverflowError)."""
    path = write(tmp_path, "list.yaml", _as_list(*_lab1_reference_objects()))
    code, out, err = run_cli(capsys, *command, path, "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    if command == ["analyze"]:
        assert data["findings"] == []
    elif command[0] == "trace":
        assert data["outcome"] == "ok"
    else:
        assert data["score"] == data["max_score"] > 0


def test_list_items_keep_their_order_after_the_baseline(tmp_path):
    """Two Gateways of one List file: the first item is the older (istiod's merge order)."""
    gws = [{"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": n},
            "spec": {"selector": {"istio": "ingressgateway"},
                     "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}
           for n in ("zz-first", "aa-second")]
    state = load_state([write(tmp_path, "l.yaml", _as_list(*gws))])
    assert [g.meta.name for g in state.ordered_gateways][-2:] == ["zz-first", "aa-second"]
    base = max(s.meta.created for s in load_state().services)
    assert all(g.meta.created > base for g in state.gateways if g.meta.name in ("zz-first", "aa-second"))


def test_files_are_newer_than_every_object_read_from_a_snapshot(tmp_path):
    """An applied file creates its objects now: after objects carrying a real creationTimestamp."""
    snap = write(tmp_path, "s.yaml", json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "default",
                                                              "creationTimestamp": "2026-11-30T10:00:00Z"}}]}))
    state = load_state([write(tmp_path, "f.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n")],
                       snapshot=snap)
    assert state.service("default", "b").meta.created > state.service("default", "a").meta.created


def test_a_creation_time_at_the_end_of_time_does_not_overflow_the_files_after_it(tmp_path, capsys):
    snap = write(tmp_path, "s.yaml", json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "default",
                                                              "creationTimestamp": "9999-12-31T23:59:59Z"}}]}))
    path = write(tmp_path, "f.yaml", _as_list({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}}))
    code, out, err = run_cli(capsys, "analyze", "--snapshot", snap, path, "-o", "json")
    assert code in (0, 1) and json.loads(out)["mode"] == "snapshot", err


@pytest.mark.parametrize(("text", "needle"), [
    (_as_list({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "inner"}}]}), "a List inside a List"),
    ('{"apiVersion": "v1", "kind": "List", "items": {"a": {"apiVersion": "v1", "kind": "Service"}}}',
     "items must be a list of objects, not a mapping"),
])
def test_lists_that_are_not_read_are_reported_never_dropped(tmp_path, capsys, text, needle):
    path = write(tmp_path, "l.yaml", text)
    code, out, _ = run_cli(capsys, "analyze", path, "-o", "json")
    (f,) = [f for f in json.loads(out)["findings"] if f["code"] == "MANIFEST-INVALID"]
    assert code == 1 and needle in f["message"] and "l.yaml:1" in f["message"]


# --- ISTIO-NOT-INSTALLED is about CRDs, not about whether objects are valid (issue #10 item 10) -------
def test_invalid_istio_objects_do_not_make_istio_absent(tmp_path):
    broken = gateway().replace("number: 8080", 'number: "8080"')
    state = state_of(tmp_path, broken, baseline=False)
    assert state.istio_installed
    from graders.analyzers import analyze

    assert [f.code for f in analyze(state)] == ["MANIFEST-INVALID"]


def test_files_without_istio_objects_still_mean_istio_is_not_installed(tmp_path):
    state = state_of(tmp_path, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", baseline=False)
    assert not state.istio_installed
