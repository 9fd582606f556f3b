"""`lab setup/solve/reset` against the fake API server, through the real kubernetes client: exactly
which objects are created, updated and deleted, and that nothing without the course label is ever
changed or deleted. istioctl steps run a fake istioctl (see test_cluster_commands) that creates the
rendered objects in the fake API server as the real one would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeapi import DEFAULT_TOKEN, FakeApiServer, dead_url, gateway, write_kubeconfig_for
from test_cluster_commands import calls, make_fake_tools

from graders import versions
from graders.cli import main
from graders.errors import InputError
from graders.labenv import labspec, manifests
from graders.labenv.kube import Ref

REPO = Path(__file__).resolve().parents[1]
COURSE, LAB = versions.COURSE_LABEL, versions.LAB_LABEL
KINDS = ("Namespace", "ServiceAccount", "Service", "Deployment", "Gateway", "VirtualService", "DestinationRule",
         "ServiceEntry")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeApiServer, str, Path]]:
    """The course cluster as `cluster up` leaves it (fake API), a kubeconfig for it, fake tools on PATH."""
    state = tmp_path / "state"
    state.mkdir()
    make_fake_tools(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("FAKE_STATE", str(state))
    with FakeApiServer() as api:
        monkeypatch.setenv("FAKE_API_URL", api.url)
        monkeypatch.setenv("FAKE_API_TOKEN", DEFAULT_TOKEN)
        yield api, api.write_kubeconfig(tmp_path / "kubeconfig"), state


def lab(env: tuple, capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    _, kubeconfig, _ = env
    rc = main(["lab", *argv, "--kubeconfig", kubeconfig, "--timeout", "5"])
    out, err = capsys.readouterr()
    return rc, out + err


def objects(api: FakeApiServer) -> dict[tuple[str, str, str], dict]:
    """The objects of KINDS, without the ServiceAccount ``default`` Kubernetes puts in every namespace."""
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
            for kind in KINDS for o in api.objects(kind)
            if (o["kind"], o["metadata"]["name"]) != ("ServiceAccount", "default")}


def start_refs(lab_id: str, phase: str = "setup") -> set[tuple[str, str, str]]:
    spec = labspec.load(lab_id)
    out = set()
    for step in spec.steps(phase):
        if step.action == "apply":
            out |= {(r.kind, r.namespace, r.name) for r in map(manifests.ref, manifests.load(step.path))
                    if r.kind != "IstioOperator"}
    return out


def labels(obj: dict) -> dict:
    return obj["metadata"].get("labels") or {}


# --- setup ----------------------------------------------------------------------------------------------
def test_setup_creates_exactly_the_start_state_with_the_course_labels(env: tuple, capsys) -> None:
    api = env[0]
    before = objects(api)
    rc, out = lab(env, capsys, "setup", "3")
    assert rc == 0, out
    after = objects(api)
    assert set(after) - set(before) == start_refs("3")
    assert set(before) <= set(after), "setup deleted something"
    for key in start_refs("3"):
        assert labels(after[key])[COURSE] == versions.COURSE_NAME and labels(after[key])[LAB] == "03", key
    for key, obj in before.items():  # the baseline Bookinfo and Istio were not touched
        assert after[key]["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"], key
    assert {r.verb for r in api.write_requests()} == {"create"}
    assert "Lab 03 is at its start state" in out and "test/productpage-v1 ready" in out


def test_setup_twice_changes_nothing_the_second_time(env: tuple, capsys) -> None:
    api = env[0]
    assert lab(env, capsys, "setup", "3")[0] == 0
    api.clear_requests()
    rc, out = lab(env, capsys, "setup", "3")
    assert rc == 0
    assert api.write_requests() == []
    assert "unchanged 17 object(s)" in out


def test_setup_of_another_lab_removes_the_earlier_labs_objects(env: tuple, capsys) -> None:
    api = env[0]
    assert lab(env, capsys, "setup", "3")[0] == 0
    api.clear_requests()
    rc, out = lab(env, capsys, "setup", "4")
    assert rc == 0, out
    deleted = {(r.resource, r.namespace, r.name) for r in api.calls("delete")}
    assert deleted == {("gateways", "test", "bookinfo-gateway"), ("virtualservices", "test", "bookinfo")}
    after = objects(api)
    assert set(after) >= start_refs("4")
    assert all(labels(after[k])[LAB] == "04" for k in start_refs("4")), "lab 3's test Bookinfo is adopted by lab 4"
    assert api.calls("create") == [], "lab 4 starts from objects lab 3 already created"


def test_an_object_that_is_not_the_courses_is_reported_not_overwritten(env: tuple, capsys) -> None:
    api = env[0]
    mine = api.add(gateway("bookinfo-gateway", hosts=["mine.example"], port=80))
    rc, out = lab(env, capsys, "setup", "2")
    assert rc == 1
    assert "CONFLICT  Gateway default/bookinfo-gateway" in out
    assert "kubectl --context kind-istio-lab delete gateway bookinfo-gateway -n default" in out
    now = api.find("Gateway", "default", "bookinfo-gateway")
    assert now["metadata"]["resourceVersion"] == mine["metadata"]["resourceVersion"]
    assert COURSE not in labels(now)
    assert not [r for r in api.write_requests() if r.name == "bookinfo-gateway"]
    assert api.find("VirtualService", "default", "bookinfo") is not None, "the rest of the start state is applied"
    assert "Note: Istio configuration of your own is in the cluster too" in out and \
        "Gateway default/bookinfo-gateway" in out.split("Note:")[1]


def test_an_unlabelled_object_already_as_the_lab_has_it_is_accepted(env: tuple, capsys) -> None:
    api = env[0]
    (start,) = [m.obj for m in manifests.load(REPO / "labs/lab02/start") if m.kind == "Gateway"]
    api.add(start)
    rc, out = lab(env, capsys, "setup", "2")
    assert rc == 0, out
    assert "already as the lab has it" in out
    assert COURSE not in labels(api.find("Gateway", "default", "bookinfo-gateway"))


# --- solve and reset ----------------------------------------------------------------------------------------
def test_solve_updates_the_start_objects_and_reset_removes_exactly_the_labs_objects(env: tuple, capsys) -> None:
    api = env[0]
    baseline = objects(api)
    assert lab(env, capsys, "setup", "3")[0] == 0
    api.clear_requests()
    rc, out = lab(env, capsys, "solve", "3")
    assert rc == 0, out
    assert sorted((r.verb, r.resource, r.namespace) for r in api.write_requests()) == [
        ("patch", "gateways", "default"), ("patch", "gateways", "test"),
        ("patch", "virtualservices", "default"), ("patch", "virtualservices", "test")]
    assert api.find("Gateway", "test", "bookinfo-gateway")["spec"]["servers"][0]["hosts"] == ["bookinfo.test.example"]

    labelled_before = {k for k, o in objects(api).items() if labels(o).get(LAB) == "03"}
    api.clear_requests()
    rc, out = lab(env, capsys, "reset", "3")
    assert rc == 0, out
    deleted = {(r.resource, r.namespace or "", r.name) for r in api.calls("delete")}
    plural = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "Service": "services",
              "Deployment": "deployments", "Gateway": "gateways", "VirtualService": "virtualservices"}
    assert deleted == {(plural[k], ns if k != "Namespace" else "", n) for k, ns, n in labelled_before}
    assert set(objects(api)) == set(baseline), "back to the baseline"


def test_reset_never_deletes_what_the_course_did_not_create(env: tuple, capsys) -> None:
    api = env[0]
    assert lab(env, capsys, "setup", "3")[0] == 0
    api.add(gateway("my-gateway", hosts=["my.example"]))  # the learner's, in default
    api.add(gateway("mine", "test", hosts=["mine.example"]))  # the learner's, inside the course's namespace
    other_lab = gateway("from-lab-2", hosts=["two.example"])
    other_lab["metadata"]["labels"] = {COURSE: versions.COURSE_NAME, LAB: "02"}
    api.add(other_lab)
    before = {k: labels(o) for k, o in objects(api).items()}
    api.clear_requests()
    rc, out = lab(env, capsys, "reset", "3")
    assert rc == 0, out
    for r in api.calls("delete"):
        key = next(k for k in before if k[2] == r.name and k[1] in (r.namespace or "", ""))
        assert before[key].get(COURSE) == versions.COURSE_NAME and before[key].get(LAB) == "03", key
    left = objects(api)
    assert ("Gateway", "default", "my-gateway") in left and ("Gateway", "test", "mine") in left
    assert ("Gateway", "default", "from-lab-2") in left, "reset 3 leaves lab 2's objects"
    assert ("Namespace", "", "test") in left
    assert "kept      Namespace test" in out and "Gateway test/mine" in out
    assert "Not created by the course, so left in place (2): Gateway default/my-gateway, Gateway test/mine" in out


def test_reset_all_removes_every_labs_objects_and_runs_every_reset_step(env: tuple, capsys) -> None:
    api, _, state = env
    baseline = set(objects(api))
    for lab_id in ("2", "5"):
        assert lab(env, capsys, "setup", lab_id)[0] == 0
        assert lab(env, capsys, "solve", lab_id)[0] == 0
    installs = [c for c in calls(state) if c[:2] == ["istioctl", "install"]]
    assert [c[3] for c in installs] == ["labs/lab05/solutions/reference/istio-operator.yaml"]
    rc, out = lab(env, capsys, "reset", "--all")
    assert rc == 0, out
    installs = [c for c in calls(state) if c[:2] == ["istioctl", "install"]]
    assert installs[-1] == ["istioctl", "install", "-f", "labs/cluster/istio-operator.yaml", "-y", "--context",
                            "kind-istio-lab", "--kubeconfig", env[1]]
    assert set(objects(api)) == baseline


def test_lab4_second_gateway_is_installed_labelled_and_removed_by_reset(env: tuple, capsys) -> None:
    api, kubeconfig, state = env
    assert lab(env, capsys, "setup", "4")[0] == 0
    rc, out = lab(env, capsys, "solve", "4")
    assert rc == 0, out
    assert [c for c in calls(state) if c[:2] == ["istioctl", "install"]] == [
        ["istioctl", "install", "-f", "labs/lab04/solutions/reference/ingress-2.yaml", "-y", "--context",
         "kind-istio-lab", "--kubeconfig", kubeconfig]]
    for kind in ("Deployment", "Service"):
        obj = api.find(kind, "istio-ingress-2", "istio-ingressgateway-2")
        assert labels(obj)[LAB] == "04" and labels(obj)["install.operator.istio.io/owning-resource"] == "ingress-2"
    istiod_rv = api.find("Deployment", "istio-system", "istiod")["metadata"]["resourceVersion"]
    rc, out = lab(env, capsys, "reset", "4")
    assert rc == 0, out
    assert api.find("Deployment", "istio-ingress-2", "istio-ingressgateway-2") is None
    assert api.find("Namespace", "", "istio-ingress-2") is None
    assert api.find("Namespace", "", "test") is None
    assert api.find("Deployment", "istio-system", "istiod")["metadata"]["resourceVersion"] == istiod_rv
    assert api.find("Service", "istio-system", "istio-ingressgateway") is not None


# --- dry runs ------------------------------------------------------------------------------------------------
def _dry(env: tuple, capsys, *argv: str, tmp_path: Path) -> tuple[int, str]:
    """A dry run: it reads the cluster (to decide what reset would delete) but never writes."""
    rc = main(["lab", *argv, "--dry-run", "--kubeconfig", env[1]])
    out, err = capsys.readouterr()
    assert env[0].write_requests() == [], "a dry run wrote to the cluster"
    return rc, out + err


def test_setup_dry_run_lists_the_start_objects_in_apply_order(env: tuple, capsys, tmp_path: Path) -> None:
    rc, out = _dry(env, capsys, "setup", "2", tmp_path=tmp_path)
    assert rc == 0, out
    applied = [li.split()[1:3] for li in out.splitlines() if li.strip().startswith("apply ")]
    assert applied[-2:] == [["Gateway", "default/bookinfo-gateway"], ["VirtualService", "default/bookinfo"]]
    assert ["Deployment", "default/productpage-v1"] in applied, "the baseline is re-applied too"
    assert f"{COURSE}={versions.COURSE_NAME},{LAB}=02" in out
    assert "labs/lab02/start/bookinfo-gateway.yaml:4" in out
    assert calls(env[2]) == []


def test_solve_dry_run_shows_the_istioctl_step_after_the_namespace(env: tuple, capsys, tmp_path: Path) -> None:
    rc, out = _dry(env, capsys, "solve", "4", tmp_path=tmp_path)
    assert rc == 0, out
    lines = [li.strip() for li in out.splitlines()]
    ns = lines.index(next(li for li in lines if li.startswith("apply     Namespace istio-ingress-2")))
    cmd = lines.index(next(li for li in lines if li.startswith("$ istioctl")))
    assert ns < cmd
    assert lines[cmd].startswith("$ istioctl install -f labs/lab04/solutions/reference/ingress-2.yaml -y "
                                 "--context kind-istio-lab --kubeconfig ")
    assert "owning-resource=ingress-2" in out
    assert calls(env[2]) == []


def test_reset_dry_run_names_the_selector_and_the_restore_step(env: tuple, capsys, tmp_path: Path) -> None:
    rc, out = _dry(env, capsys, "reset", "5", tmp_path=tmp_path)
    assert rc == 0, out
    assert f"every object labelled {COURSE}={versions.COURSE_NAME} and {LAB}=05" in out
    assert "$ istioctl install -f labs/cluster/istio-operator.yaml -y --context kind-istio-lab" in out
    assert calls(env[2]) == []


# --- input errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "words"), [
    (["setup", "9"], "lab 09 has no labs/lab09/lab.yaml"),
    (["setup", "banana"], "is not a lab"),
    (["reset"], "needs a lab number or --all"),
    (["reset", "3", "--all"], "needs a lab number or --all"),
])
def test_bad_lab_arguments_give_one_line_and_exit_2(env: tuple, capsys, argv: list[str], words: str) -> None:
    rc, out = lab(env, capsys, *argv)
    assert rc == 2
    assert words in out and len(out.strip().splitlines()) == 1


def test_unreachable_cluster_is_one_line_and_exit_2(capsys, tmp_path: Path) -> None:
    dead = write_kubeconfig_for(tmp_path / "dead", {"kind-istio-lab": dead_url()})
    rc = main(["lab", "setup", "2", "--kubeconfig", dead])
    _out, err = capsys.readouterr()
    assert rc == 2
    assert err.startswith("error: cannot reach the cluster of context kind-istio-lab")
    assert len(err.strip().splitlines()) == 1


def test_lab_list(capsys) -> None:
    assert main(["lab", "list"]) == 0
    out = capsys.readouterr().out
    listed = [li.split()[0] for li in out.splitlines() if li.startswith("lab")]
    assert listed == [f"lab0{i}" for i in range(1, 8)]
    assert "istioctl-install labs/lab04/solutions/reference" in out


@pytest.mark.parametrize(("text", "words"), [
    ('id: "07"\nsetup:\n- copy: start\n', "exactly one of apply, istioctl-install, delete"),
    ('id: "07"\nsetup:\n- apply: ../../etc\n', "points outside labs/"),
    ('id: "07"\nsolve:\n- apply: x\n  set: [a=b]\n', "`set` only applies to istioctl-install"),
    ('id: "7"\n', "id is '7' but the folder is lab07"),
    ('id: "07"\nreset: apply\n', "must be a list of steps"),
])
def test_lab_yaml_mistakes_are_input_errors(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "lab07").mkdir()
    (tmp_path / "lab07" / "lab.yaml").write_text(text)
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace("*", r"\*")):
        labspec.load("7", labs_dir=tmp_path)


def test_refs_and_ids() -> None:
    assert [labspec.lab_id(t) for t in ("3", "03", "lab03", "lab03-conflicts", " Lab3 ")] == ["03"] * 5
    (m,) = [m for m in manifests.load(REPO / "labs/lab02/start") if m.kind == "Gateway"]
    assert manifests.ref(m) == Ref("Gateway", "default", "bookinfo-gateway", "networking.istio.io/v1")
    assert json.dumps(str(manifests.ref(m))) == '"Gateway default/bookinfo-gateway"'


def test_delete_step_removes_only_course_objects_named_in_the_file(env: tuple, capsys, tmp_path: Path) -> None:
    from graders.labenv.labops import LabEnv
    from graders.labenv.labspec import Step
    from graders.labenv.runner import Runner

    api, kubeconfig, _ = env
    assert lab(env, capsys, "setup", "3")[0] == 0
    step = Step("delete", REPO / "labs/lab03/start/test.yaml")
    lab_env = LabEnv(Runner(), "kind-istio-lab", kubeconfig)
    try:
        outcomes = lab_env.run_step(step, "03")
    finally:
        lab_env.close()
    assert sorted(str(o.ref) for o in outcomes) == ["Gateway test/bookinfo-gateway", "VirtualService test/bookinfo"]
    assert api.find("Gateway", "test", "bookinfo-gateway") is None
    assert api.find("Gateway", "default", "bookinfo-gateway") is not None, "same name, other namespace: kept"
    # an object of the same name that is not the course's is left and reported
    api.add(gateway("bookinfo-gateway", "test", hosts=["x.example"]))
    lab_env = LabEnv(Runner(), "kind-istio-lab", kubeconfig)
    try:
        outcomes = lab_env.run_step(step, "03")
    finally:
        lab_env.close()
    assert [(o.action, str(o.ref)) for o in outcomes] == []
    assert api.find("Gateway", "test", "bookinfo-gateway") is not None
    assert "left      Gateway test/bookinfo-gateway" in capsys.readouterr().out


def test_reset_reports_a_second_gateway_the_learner_installed(env: tuple, capsys) -> None:
    from graders.sources import istio_install

    api = env[0]
    api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-ingress-2"}})
    ((_, iop),) = manifests.istio_operator_files(REPO / "labs/lab04/solutions/reference")
    for obj in istio_install.render(iop):
        api.add(obj)
    rc, out = lab(env, capsys, "reset", "4")
    assert rc == 0, out
    assert api.find("Deployment", "istio-ingress-2", "istio-ingressgateway-2") is not None
    assert "istioctl installation 'ingress-2' was not made by `lab solve` and is left in place" in out


def test_setup_waits_for_a_namespace_still_terminating_from_a_reset(env: tuple, capsys) -> None:
    import threading

    api = env[0]
    ns = api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "test", "labels": {COURSE: versions.COURSE_NAME, LAB: "03"}}})
    with api.cluster.lock:  # what a real API server shows while the namespace empties itself
        rt = api.cluster.resource("", "v1", "namespaces")
        api.cluster.get(rt, "", "test")["metadata"]["deletionTimestamp"] = "2026-11-30T09:10:00Z"
    gone = threading.Timer(1.0, lambda: api.cluster.delete(rt, "", "test"))
    gone.start()
    try:
        rc, out = lab(env, capsys, "setup", "3")
    finally:
        gone.cancel()
    assert rc == 0, out
    now = api.find("Namespace", "", "test")
    assert now is not None and now["metadata"]["uid"] != ns["metadata"]["uid"], "created anew once the old one went"
    assert "deletionTimestamp" not in now["metadata"]


def test_rollout_wait_reports_progress_and_gives_up_with_one_line(env: tuple) -> None:
    from graders.errors import ClusterError
    from graders.labenv import apply as ops
    from graders.labenv.kube import Kube

    api, kubeconfig, _ = env
    api.set_ready("default", "reviews-v2", False)
    kube = Kube("kind-istio-lab", kubeconfig)
    lines: list[str] = []
    try:
        with pytest.raises(ClusterError, match=r"not rolled out after \d+s: default/reviews-v2: 0/1 available"):
            ops.wait_for_rollouts(kube, [Ref("Deployment", "default", "reviews-v2", "apps/v1"),
                                         Ref("Deployment", "default", "details-v1", "apps/v1")],
                                  lines.append, timeout=1.0, poll=0.2, every=0.4)
    finally:
        kube.close()
    assert lines[0] == "  [1/2] default/details-v1 ready"
    assert any(li.startswith("  ... ") and "default/reviews-v2 (0/1 available)" in li for li in lines[1:])


def test_a_learners_secret_keeps_the_course_namespace(env: tuple, capsys) -> None:
    api = env[0]
    assert lab(env, capsys, "setup", "3")[0] == 0
    api.add({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "my-cert", "namespace": "test"},
             "type": "kubernetes.io/tls", "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}})
    rc, out = lab(env, capsys, "reset", "3")
    assert rc == 0, out
    assert api.find("Namespace", "", "test") is not None
    assert api.find("Secret", "test", "my-cert") is not None
    assert "kept      Namespace test" in out and "Secret test/my-cert" in out
    assert "ConfigMap test/kube-root-ca.crt" not in out, "what Kubernetes puts in every namespace does not count"
    secret_reads = [r for r in api.requests if r.resource == "secrets"]
    assert secret_reads and all(r.verb == "list" and r.namespace == "test" and "PartialObjectMetadataList" in r.accept
                                for r in secret_reads)


def test_solve_without_setup_says_to_run_setup_first(env: tuple, capsys) -> None:
    api = env[0]
    rc, out = lab(env, capsys, "solve", "4")
    assert rc == 2
    assert out.strip().splitlines()[-1] == ("error: namespace test does not exist; lab 04's solution goes on top of "
                                            "its start state: run `python -m graders lab setup 04` first")
    assert api.write_requests() == []


def test_a_missing_istioctl_is_one_line_pointing_at_doctor(env: tuple, capsys, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(tmp_path)
    assert lab(env, capsys, "setup", "5")[0] == 0
    rc, out = lab(env, capsys, "solve", "5")
    assert rc == 2
    assert out.strip().splitlines()[-1].startswith("error: istioctl is not on PATH, so `istioctl install -f "
                                                   "labs/lab05/solutions/reference/istio-operator.yaml")
    assert "python -m graders doctor" in out.strip().splitlines()[-1]


def test_the_part_of_label_alone_does_not_make_an_object_the_courses(env: tuple, capsys) -> None:
    api = env[0]
    # a learner who copied a solution file, labels and all, into their own work and applied it
    copied = next(m.obj for m in manifests.load(REPO / "labs/lab02/solutions/reference") if m.kind == "Gateway")
    mine = api.add({**copied, "metadata": {**copied["metadata"], "labels": {COURSE: versions.COURSE_NAME}}})
    rc, out = lab(env, capsys, "setup", "2")
    assert rc == 1 and "CONFLICT  Gateway default/bookinfo-gateway" in out
    rc, out = lab(env, capsys, "reset", "--all")
    assert rc == 0
    assert api.find("Gateway", "default", "bookinfo-gateway")["metadata"]["uid"] == mine["metadata"]["uid"]


# --- lab-environment safety: a learner's object keeps its namespace, whatever its kind -----------------------
def _learner(kind: str, api_version: str, name: str = "mine", **body: object) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "test"}, **body}


POD_SPEC = {"containers": [{"name": "c", "image": "busybox"}]}
TEMPLATE = {"metadata": {"labels": {"app": "mine"}}, "spec": POD_SPEC}
LEARNER_OBJECTS = [
    _learner("Pod", "v1", spec=POD_SPEC),
    _learner("ReplicaSet", "apps/v1", spec={"replicas": 0, "selector": {"matchLabels": {"app": "mine"}},
                                            "template": TEMPLATE}),
    _learner("Endpoints", "v1", subsets=[{"addresses": [{"ip": "10.0.0.9"}], "ports": [{"port": 80}]}]),
    _learner("EndpointSlice", "discovery.k8s.io/v1", addressType="IPv4", endpoints=[]),
    _learner("ConfigMap", "v1", data={"k": "v"}),
    _learner("Secret", "v1", type="Opaque", data={"password": "c2VjcmV0"}),
    _learner("ServiceAccount", "v1"),
    _learner("Job", "batch/v1", spec={"template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}),
    _learner("CronJob", "batch/v1", spec={"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
        "spec": {**POD_SPEC, "restartPolicy": "Never"}}}}}),
    _learner("StatefulSet", "apps/v1", spec={"serviceName": "mine", "selector": {"matchLabels": {"app": "mine"}},
                                             "template": TEMPLATE}),
    _learner("DaemonSet", "apps/v1", spec={"selector": {"matchLabels": {"app": "mine"}}, "template": TEMPLATE}),
    _learner("PersistentVolumeClaim", "v1", spec={"accessModes": ["ReadWriteOnce"],
                                                  "resources": {"requests": {"storage": "1Gi"}}}),
    _learner("ReplicationController", "v1", spec={"replicas": 0, "template": TEMPLATE}),
    _learner("PodTemplate", "v1", template=TEMPLATE),
    _learner("LimitRange", "v1", spec={"limits": [{"type": "Container", "default": {"cpu": "100m"}}]}),
    _learner("ResourceQuota", "v1", spec={"hard": {"pods": "10"}}),
    _learner("NetworkPolicy", "networking.k8s.io/v1", spec={"podSelector": {}}),
    _learner("Ingress", "networking.k8s.io/v1", spec={"defaultBackend": {"service": {"name": "x", "port": {
        "number": 80}}}}),
    _learner("PodDisruptionBudget", "policy/v1", spec={"maxUnavailable": 1, "selector": {}}),
    _learner("HorizontalPodAutoscaler", "autoscaling/v2", spec={"maxReplicas": 2, "scaleTargetRef": {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}}),
    _learner("Lease", "coordination.k8s.io/v1", spec={"holderIdentity": "me"}),
    _learner("Role", "rbac.authorization.k8s.io/v1", rules=[]),
    _learner("RoleBinding", "rbac.authorization.k8s.io/v1", roleRef={
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mine"}, subjects=[]),
    {**gateway("mine", "test", hosts=["mine.example"])},
    _learner("VirtualService", "networking.istio.io/v1", spec={"hosts": ["mine.example"], "http": []}),
    _learner("Widget", "example.com/v1", spec={"size": 3}),  # a custom resource the course has never heard of
]


def _widget_crd(api: FakeApiServer) -> None:
    from fakeapi import _crd

    api.add(_crd("example.com", "widgets", "Widget", (), ("v1",), "v1"))


@pytest.mark.parametrize("obj", LEARNER_OBJECTS, ids=[o["kind"] for o in LEARNER_OBJECTS])
def test_reset_keeps_a_course_namespace_holding_any_learner_object(env: tuple, capsys, obj: dict) -> None:
    api = env[0]
    _widget_crd(api)
    assert lab(env, capsys, "setup", "3")[0] == 0
    mine = api.add(obj)
    api.clear_requests()
    rc, dry = lab(env, capsys, "reset", "3", "--dry-run")
    assert rc == 0, dry
    assert api.write_requests() == []
    rc, out = lab(env, capsys, "reset", "3")
    assert rc == 0, out
    assert api.find(obj["kind"], "test", "mine")["metadata"]["uid"] == mine["metadata"]["uid"], "deleted!"
    assert api.find("Namespace", "", "test") is not None
    line = f"kept      Namespace test  (it also holds 1 object(s) the course did not create ({obj['kind']} test/mine)"
    assert line in out and line in dry, "the dry run and the real run decide alike, and say why"
    assert api.find("Gateway", "test", "bookinfo-gateway") is None, "the course's own objects in it are deleted"
    assert not [r for r in api.requests if r.resource in ("secrets", "configmaps")
                and "PartialObjectMetadataList" not in r.accept and r.method == "GET"], "Secret data was read"


@pytest.mark.parametrize("command", [["setup", "2"], ["reset", "--all"]])
@pytest.mark.parametrize("kind", ["Pod", "ReplicaSet", "Endpoints", "Secret", "Widget"])
def test_setup_and_reset_all_keep_a_learner_object_too(env: tuple, capsys, command: list[str], kind: str) -> None:
    api = env[0]
    _widget_crd(api)
    assert lab(env, capsys, "setup", "3")[0] == 0
    mine = api.add(next(o for o in LEARNER_OBJECTS if o["kind"] == kind))
    rc, out = lab(env, capsys, *command)
    assert rc == 0, out
    assert api.find(kind, "test", "mine")["metadata"]["uid"] == mine["metadata"]["uid"]
    assert f"kept      Namespace test  (it also holds 1 object(s) the course did not create ({kind} test/mine)" in out


def test_a_learner_pod_owned_by_a_learner_replicaset_is_the_learners(env: tuple, capsys) -> None:
    api = env[0]
    assert lab(env, capsys, "setup", "3")[0] == 0
    rs = api.add(LEARNER_OBJECTS[1])
    pod = _learner("Pod", "v1", "mine-abcde", spec=POD_SPEC)
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "mine",
                                           "uid": rs["metadata"]["uid"], "controller": True}]
    api.add(pod)
    rc, out = lab(env, capsys, "reset", "3")
    assert rc == 0, out
    assert api.find("Pod", "test", "mine-abcde") is not None and api.find("Namespace", "", "test") is not None
    assert "2 object(s) the course did not create (Pod test/mine-abcde, ReplicaSet test/mine)" in out


def test_what_kubernetes_puts_in_a_namespace_does_not_keep_it(env: tuple, capsys) -> None:
    """The fake, like a real cluster, fills `test` with the ServiceAccount default, kube-root-ca.crt,
    the course Deployments' ReplicaSets and Pods, Endpoints and EndpointSlices of its Services, Events."""
    api = env[0]
    assert lab(env, capsys, "setup", "3")[0] == 0
    held = {o["kind"] for o in api.objects(namespace="test")}
    assert {"ServiceAccount", "ConfigMap", "ReplicaSet", "Pod", "Endpoints", "EndpointSlice", "Event"} <= held
    rc, out = lab(env, capsys, "reset", "3")
    assert rc == 0, out
    assert api.find("Namespace", "", "test") is None and "deleted   Namespace test" in out


def test_namespaces_are_judged_before_anything_is_deleted(env: tuple, capsys) -> None:
    """On a real cluster a deleted Deployment's Pods linger a moment, their owner gone: judged after the
    Deployment's deletion they would look like nobody's and keep the namespace the dry run let go."""
    api = env[0]
    assert lab(env, capsys, "setup", "3")[0] == 0
    api.cluster.deferred_gc = True
    rc, dry = lab(env, capsys, "reset", "3", "--dry-run")
    rc, out = lab(env, capsys, "reset", "3")
    assert rc == 0, out
    assert "would delete Namespace test" in dry and "deleted   Namespace test" in out
    assert api.find("Namespace", "", "test") is None


def test_a_resource_that_cannot_be_listed_keeps_the_namespace(env: tuple, capsys) -> None:
    api = env[0]
    assert lab(env, capsys, "setup", "3")[0] == 0
    api.forbid("leases", "coordination.k8s.io", namespace="test")
    rc, out = lab(env, capsys, "reset", "3")
    assert rc == 0, out
    assert api.find("Namespace", "", "test") is not None
    assert "kept      Namespace test  (what it holds could not all be seen (leases.coordination.k8s.io" in out


def test_ownership_chains_are_attributed() -> None:
    from graders.labenv.residents import learner_objects

    course = {COURSE: versions.COURSE_NAME, LAB: "03"}

    def obj(kind: str, name: str, uid: str, owners: tuple[str, ...] = (), labels: dict | None = None) -> dict:
        return {"kind": kind, "metadata": {"name": name, "uid": uid, "labels": labels or {},
                                           "ownerReferences": [{"uid": o} for o in owners]}}

    objs = [obj("Deployment", "d", "1", labels=course), obj("ReplicaSet", "d-x", "2", ("1",)),
            obj("Pod", "d-x-y", "3", ("2",)), obj("Service", "s", "4", labels=course), obj("Endpoints", "s", "5"),
            obj("EndpointSlice", "s-q", "6", ("4",)), obj("ServiceAccount", "default", "7"),
            obj("ReplicaSet", "mine", "8"), obj("Pod", "mine-z", "9", ("8",)),
            obj("Pod", "orphan", "10", ("404",)), obj("Pod", "both", "11", ("1", "8")),
            obj("Endpoints", "manual", "12"), obj("Pod", "a", "13", ("14",)), obj("Pod", "b", "14", ("13",)),
            {**obj("Pod", "going", "15"), "metadata": {"name": "going", "uid": "15", "deletionTimestamp": "x"}}]
    assert [o["metadata"]["name"] for o in learner_objects(objs)] == [
        "mine", "mine-z", "orphan", "both", "manual", "a", "b"]


def test_reset_reads_every_page_of_a_paging_api_server(env: tuple, capsys) -> None:
    api = env[0]
    baseline = set(objects(api))
    assert lab(env, capsys, "setup", "3")[0] == 0
    api.page_size = 2  # at most 2 items per LIST answer, then a continue token
    api.clear_requests()
    rc, out = lab(env, capsys, "reset", "3")
    assert rc == 0, out
    assert set(objects(api)) == baseline, "objects on later pages were not deleted"
    assert any(r.query.get("continue") for r in api.calls("list"))
