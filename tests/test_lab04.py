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
    # Only `app` overridden: istio: ingressgateway is inherited, so default's Gateway programs both gateways and
    # wins the shared listener.
    "only-app-label": ({"own-labels", "test-reachable"}, {"own-labels": "label"}),
    # LoadBalancer without the spare nodePort: EXTERNAL-IP stays <pending> on kind.
    "no-node-port": ({"node-port"}, {"node-port": "nodePort"}),
    # The gateway is installed, but test's Gateway still selects istio: ingressgateway.
    "gateway-still-ingressgateway": ({"test-on-new-gateway", "test-reachable"},
                                     {"test-on-new-gateway": "spec.selector of Gateway test/bookinfo-gateway"}),
    # No profile: the default profile re-applies the course's istiod and ingress gateway with its own values.
    "iop-no-profile": ({"install-safe"}, {"install-safe": "spec.profile"}),
    # metadata.name of the course installation: istioctl prunes istiod and the course's gateways, so the
    # cluster is not ready and what needs it is blocked.
    "iop-same-name": ({"ready", "install-safe", "test-reachable", "default-unchanged"},
                      {"install-safe": "metadata.name"}),
    # No metadata.name: the prune selector has no owner, so the course installation is pruned too.
    "iop-no-name": ({"ready", "install-safe", "test-reachable", "default-unchanged"},
                    {"install-safe": "metadata.name"}),
    # Helm-installed gateway (Service 80 -> 80) with the Bookinfo sample's Gateway port 8080 (istio/istio#50693).
    "helm-bookinfo-port-8080": ({"test-reachable"}, {"test-reachable": "neither a port nor a targetPort"}),
}
BLOCKED = {"iop-same-name": {"test-reachable", "default-unchanged"},
           "iop-no-name": {"test-reachable", "default-unchanged"},
           # the request check waits for the labels and test's Gateway: one mistake is charged once
           "no-label-override": {"test-reachable"}, "only-app-label": {"test-reachable"},
           "gateway-still-ingressgateway": {"test-reachable"}}


def test_every_wrong_attempt_has_an_expectation():
    assert set(variants("wrong", LAB_DIR)) == set(WRONG)


@pytest.mark.parametrize("attempt", sorted(WRONG))
def test_wrong_attempt_fails_exactly_the_right_checks(attempt):
    expected, hints = WRONG[attempt]
    result = run("lab04", paths=[str(LAB_DIR / "wrong" / attempt)])
    assert_fails_exactly(result, expected, hints)
    assert {c.id for c in result.checks if c.status == "blocked"} == BLOCKED.get(attempt, set())


def test_inherited_labels_are_named_with_their_effect():
    result = run("lab04", paths=[str(LAB_DIR / "wrong" / "no-label-override")])
    message = result.check("own-labels").message
    assert "istio=ingressgateway" in message and "app=istio-ingressgateway" in message
    assert "GW-SHARED-WORKLOAD" in message and "default/bookinfo-gateway" in message
    # The request check waits for the labels: the one mistake is charged once, where it is made.
    assert result.check("test-reachable").status == "blocked"


def test_only_the_istio_label_overridden_is_right_with_advice_about_app():
    """istio.io's "Installing Gateways" pattern: Gateways select istio, so it is a full answer; sharing app
    only matters to selectors on app (root-namespace policies), which the message says."""
    result = run("lab04", paths=[str(LAB_DIR / "solutions" / "only-istio-label")])
    assert result.score == result.max_score
    message = result.check("own-labels").message
    assert "app=istio-ingressgateway, istio=ingressgateway-2" in message
    assert "override app too" in message and "root namespace" in message and "AuthorizationPolicy" in message


def test_gateway_added_to_the_course_operator_is_an_in_place_update():
    result = run("lab04", paths=[str(LAB_DIR / "solutions" / "same-install")])
    assert result.score == result.max_score
    assert "updates the course installation in place" in result.check("install-safe").message


def test_no_profile_names_the_same_istiod_reapplied_not_a_second_one():
    chk = run("lab04", paths=[str(LAB_DIR / "wrong" / "iop-no-profile")]).check("install-safe")
    assert "re-applies istiod (Deployment, Service), istio-ingressgateway (Deployment, Service)" in chk.message
    assert "now belong to ingress-2" in chk.message and "type LoadBalancer instead of NodePort" in chk.message
    assert "second istiod" not in chk.message and "over the course's" not in chk.message


@pytest.mark.parametrize("attempt", ["iop-same-name", "iop-no-name"])
def test_pruning_installs_name_what_they_delete(attempt):
    result = run("lab04", paths=[str(LAB_DIR / "wrong" / attempt)])
    assert "prunes" in result.check("install-safe").message
    assert "istiod (Deployment, Service), istio-ingressgateway (Deployment, Service), istio-egressgateway " \
           "(Deployment, Service) in istio-system" in result.check("install-safe").message
    ready = result.check("ready")
    assert "no longer exist" in ready.message and "prunes" in ready.hints[0]
    # The command that shows the simulated cluster (Context.look), not kubectl, over the files graded.
    assert ready.hints[0].startswith("`python -m graders get deploy,svc -n istio-system ")
    assert f"labs/lab04/wrong/{attempt}`" in ready.hints[0]


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
    assert {c.id for c in result.checks if c.status == "failed"} == {"own-labels", "test-on-new-gateway"}
    assert result.check("test-reachable").status == "blocked"
    assert "Gateway default/bookinfo-gateway already programs both deployments" in result.check("own-labels").message


# --- the istioctl model the simulated cluster uses (graders.sources.istio_install) ----------------------
def _course_iop() -> dict:
    from graders.sources.simulated import ISTIO_OPERATOR_FILE
    from graders.yamlio import load_documents

    return load_documents(ISTIO_OPERATOR_FILE)[0].obj


def _gateway_iop(name: str | None, label: dict | None = None, **spec) -> dict:
    comp = {"name": "istio-ingressgateway-2", "namespace": "istio-ingress-2", "enabled": True}
    if label is not None:
        comp["label"] = label
    md = {"name": name} if name else {}
    return {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator", "metadata": md,
            "spec": {"profile": "empty", "components": {"ingressGateways": [comp]}, **spec}}


def _keys(objs) -> set[tuple[str, str, str]]:
    from graders.sources.istio_install import key

    return {key(o) for o in objs}


def test_label_is_merged_key_by_key_over_the_chart_defaults():
    from graders.sources.istio_install import render

    def pod_labels(label):
        (dep,) = [o for o in render(_gateway_iop("ingress-2", label)) if o["kind"] == "Deployment"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        return labels["app"], labels["istio"]

    assert pod_labels({"istio": "ingressgateway-2"}) == ("istio-ingressgateway", "ingressgateway-2")
    assert pod_labels({"app": "x"}) == ("x", "ingressgateway")
    assert pod_labels(None) == ("istio-ingressgateway", "ingressgateway")


def test_everything_rendered_carries_istioctls_owner_labels():
    from graders.sources.istio_install import COMPONENT_LABEL, OWNER_LABEL, REV_LABEL, VERSION_LABEL, render

    objs = [o for o in render(_course_iop()) if o["kind"] != "Namespace"]
    assert {o["metadata"]["labels"][COMPONENT_LABEL] for o in objs} == {"Pilot", "IngressGateways", "EgressGateways"}
    assert {o["metadata"]["labels"][OWNER_LABEL] for o in objs} == {"istio-lab"}
    assert {(o["metadata"]["labels"][REV_LABEL], o["metadata"]["labels"][VERSION_LABEL]) for o in objs} == {
        ("default", "1.30.3")}
    # No name: the chart's own default stays on the objects (install.go sets no owner label then).
    assert {o["metadata"]["labels"][OWNER_LABEL] for o in render(_gateway_iop(None))} == {"unknown"}


def test_install_prunes_only_what_the_same_owner_no_longer_renders():
    from graders.sources.istio_install import install, render

    course = render(_course_iop())
    course_keys = _keys(o for o in course if o["kind"] != "Namespace")
    # A name of its own: nothing of the course's is touched.
    assert install(course, _gateway_iop("ingress-2"))[1] == set()
    # The course's name, or no name at all: everything the file does not render is pruned.
    assert install(course, _gateway_iop("istio-lab"))[1] == course_keys
    assert install(course, _gateway_iop(None))[1] == course_keys
    # Another revision or another istioctl version is never selected; a revision's istiod has its own name.
    assert install(course, _gateway_iop(None, revision="canary"))[1] == set()
    canary = {**_course_iop(), "metadata": {"name": "canary"}}
    canary["spec"] = {**canary["spec"], "revision": "canary"}
    assert ("Deployment", "istio-system", "istiod-canary") in _keys(install(course, canary)[0])
    older = [{**o, "metadata": {**o["metadata"], "labels": {**o["metadata"].get("labels", {}),
                                                           "operator.istio.io/version": "1.29.0"}}} for o in course]
    assert install(older, _gateway_iop("istio-lab"))[1] == set()
    # The course's own file again, with a second gateway added: an in-place update, nothing pruned.
    same = _course_iop()
    same["spec"]["components"]["ingressGateways"].append(_gateway_iop("x")["spec"]["components"]["ingressGateways"][0])
    applied, gone = install(course, same)
    assert gone == set() and ("Deployment", "istio-ingress-2", "istio-ingressgateway-2") in _keys(applied)


def test_a_reapplied_gateway_service_keeps_its_node_ports_by_port_name():
    """The default profile's istio-ingressgateway has no nodePorts; the API server keeps the old ones
    (patchAllocatedValues) while the type still needs node ports."""
    from graders.sources.istio_install import install, render

    iop = _gateway_iop("ingress-2")
    del iop["spec"]["profile"]
    applied, gone = install(render(_course_iop()), iop)
    (svc,) = [o for o in applied if o["kind"] == "Service" and o["metadata"]["name"] == "istio-ingressgateway"]
    assert svc["spec"]["type"] == "LoadBalancer" and gone == set()
    assert {p["name"]: p.get("nodePort") for p in svc["spec"]["ports"]} == {
        "status-port": 30021, "http2": 30080, "https": 30443}
    assert "nodePort" not in render(iop)[-1]["spec"]["ports"][1]  # rendered alone: none


# --- the notebook's text ---------------------------------------------------------------------------------
def assert_notebook_guides_the_learner(nb_path, lab: str) -> str:
    """What issue #13 asks of every lab notebook: JupyterLab's path, how to make a YAML file, a word on
    chapter links, what to hand in, no claim that batch grading reads stored results, and quiz answers
    that are not all in the same position. Returns the markdown for lab-specific checks."""
    import ast
    import json

    cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert f"`{lab}/work`" in markdown and f"labs/{lab}/work/" in markdown
    assert "New File" in markdown and "Rename" in markdown
    assert "chapters are outside its file browser" in markdown
    assert "**Hand in**" in markdown and "never reads the results stored in" in markdown
    assert "batch grading reads it" not in markdown
    answers = []
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and source.startswith("quiz("):
            call = ast.parse(source).body[0].value
            answers += [k.value.value for k in call.keywords if k.arg == "answer"]
    assert len(answers) >= 3 and len(set(answers)) > 1, answers
    return markdown


def test_notebook_text():
    markdown = assert_notebook_guides_the_learner(LAB_DIR.parent / "lab04-second-gateway.ipynb", "lab04")
    assert "merged key by key" in markdown and "override both keys" not in markdown.lower()
    assert "over the course's.\n" not in markdown and "one istiod, not two" in markdown


def test_live_cluster_after_a_no_profile_install_shows_the_takeover(fake_api, fake_kubeconfig):
    """On a live cluster the install is judged by its effects: istioctl's owner label on the course's
    istiod and gateway now names the learner's IstioOperator (no IstioOperator file is given)."""
    from graders.sources.istio_install import key
    from graders.sources.simulated import baseline_objects, render_operators
    from graders.yamlio import load_paths

    attempt = LAB_DIR / "wrong" / "iop-no-profile"
    raws = render_operators(baseline_objects() + load_paths([str(LAB_DIR / "start"), str(attempt)], seq_start=10**7))
    applied = [r.obj for r in raws if not r.origin.startswith("baseline") and r.obj.get("kind") != "IstioOperator"]
    for obj in applied:  # what istioctl re-applied replaces what `cluster up` created
        rt = fake_api.cluster.resource_for_kind(obj["apiVersion"], obj["kind"])
        _, ns, name = key(obj)
        if fake_api.cluster.get(rt, ns, name) is not None:
            fake_api.cluster.delete(rt, ns, name)
    fake_api.add_all(sorted(applied, key=lambda o: o["kind"] != "Namespace"))
    result, _ = _live(fake_api, fake_kubeconfig)
    chk = result.check("install-safe")
    assert chk.status == "failed" and "judged" not in chk.message
    assert "now belong to IstioOperator ingress-2" in chk.message and "type LoadBalancer instead of NodePort" in \
        chk.message
    assert result.check("default-unchanged").passed  # node ports kept: default's Bookinfo still answers


def test_install_over_malformed_objects_does_not_raise():
    """The learner's files may hold anything under the names istioctl renders: bad ports, odd kinds."""
    from graders.sources.istio_install import install, keep_node_ports

    iop = _gateway_iop("ingress-2")
    del iop["spec"]["profile"]  # renders istio-system/istio-ingressgateway over the malformed one below
    hostile = [{"kind": ["Service"], "metadata": {"labels": {"operator.istio.io/component": "x"}}},
               {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istio-ingressgateway",
                                                                    "namespace": "istio-system", "labels": "x"},
                "spec": {"type": "NodePort", "ports": 5}},
               "not a mapping"]
    applied, gone = install([h for h in hostile if isinstance(h, dict)], iop)
    assert gone == set() and applied
    kept = keep_node_ports({"spec": {"type": "NodePort", "ports": [{"name": "http2", "nodePort": True}]}},
                           {"spec": {"type": "NodePort", "ports": [{"name": "http2", "nodePort": [1]}]}})
    assert kept["spec"]["ports"] == [{"name": "http2", "nodePort": [1]}]
