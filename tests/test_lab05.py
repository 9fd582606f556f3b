"""Lab 5 (egress gateway limits): the solution passes; each known wrong attempt fails exactly the
checks it should; the outbound policy is read from where it honestly can be; in live mode the
access-log proof is read through the API and a refusal is reported, not crashed on."""

from __future__ import annotations

import pytest
from test_lab03 import empty_file, failing, variants

from graders.checks import Context
from graders.labs import lab_dir, run
from graders.labs.lab05 import LAB, ready
from graders.sources import load_state

LAB_DIR = lab_dir(LAB)


def statuses(result, status: str) -> set[str]:
    return {c.id for c in result.checks if c.status == status}


@pytest.mark.parametrize("variant", variants("solutions", LAB_DIR))
def test_every_solution_passes_every_check(variant):
    result = run("lab05", paths=[str(LAB_DIR / "solutions" / variant)])
    assert failing(result) == LIVE_ONLY, [(c.id, c.message) for c in result.checks if not c.passed]
    assert statuses(result, "not-evaluated") == LIVE_ONLY
    assert result.score == result.max_score == sum(c.points for c in LAB.checks) - 2


LIVE_ONLY = {"egress-log"}  # not-evaluated off-cluster: its points are not in max_score there
WRONG = {
    # resolution NONE: the egress gateway would forward to the original address, itself.
    "resolution-none": ({"service-entry"}, set(), {"service-entry": "spec.resolution"}),
    # no `mesh` in spec.gateways: sidecars never use the egress gateway.
    "missing-mesh-route": ({"mesh-route"}, set(), {"mesh-route": "spec.gateways"}),
    # the Gateway selects the ingress gateway's pods: what needs the egress Gateway is blocked.
    "gateway-selects-ingress": ({"egress-gateway"}, {"gateway-route", "egress-not-ingress"},
                                {"egress-gateway": "spec.selector"}),
    # the course's ALLOW_ANY was never changed.
    "allow-any-left-on": ({"registry-only"}, set(), {"registry-only": "outboundTrafficPolicy"}),
    # step 1's experiment left in place: a Gateway on the egress gateway routing to Bookinfo.
    "egress-as-ingress": ({"egress-not-ingress"}, set(), {"egress-not-ingress": "spec.selector"}),
    # only meshConfig under the course's name: the default profile has no egress gateway, istioctl prunes it.
    "minimal-iop": ({"ready"}, {"egress-gateway", "gateway-route", "egress-not-ingress"},
                    {"ready": "spec.profile and components.egressGateways"}),
}


def test_every_wrong_attempt_has_an_expectation():
    assert set(variants("wrong", LAB_DIR)) == set(WRONG)


@pytest.mark.parametrize("attempt", sorted(WRONG))
def test_wrong_attempt_fails_exactly_the_right_checks(attempt):
    failed, blocked, hints = WRONG[attempt]
    result = run("lab05", paths=[str(LAB_DIR / "wrong" / attempt)])
    assert (statuses(result, "failed"), statuses(result, "blocked")) == (failed, blocked), \
        [(c.id, c.message) for c in result.checks if not c.passed]
    assert statuses(result, "not-evaluated") == LIVE_ONLY
    for check_id, words in hints.items():  # two progressive hints, the first at the right field
        chk = result.check(check_id)
        assert len(chk.hints) >= 2 and words.lower() in chk.hints[0].lower(), chk.hints
    assert all(c.hint for c in result.checks if c.status == "failed")


def test_egress_as_ingress_is_explained_by_the_trace_outcome():
    result = run("lab05", paths=[str(LAB_DIR / "wrong" / "egress-as-ingress")])
    message = result.check("egress-not-ingress").message
    assert "`unreachable`" in message and "ClusterIP" in message and "default/productpage" in message
    # The exit Gateway is credited, not step 1's hosts-"*" Gateway that also covers httpbin.org.
    assert result.check("egress-gateway").message.startswith("Gateway default/httpbin-egress programs")


def test_an_install_that_prunes_the_egress_gateway_is_named_as_the_cause():
    result = run("lab05", paths=[str(LAB_DIR / "wrong" / "minimal-iop")])
    assert result.check("ready").message.startswith(
        "There is no Service istio-system/istio-egressgateway: IstioOperator istio-lab in "
        "labs/lab05/wrong/minimal-iop/istio-operator.yaml is the course installation and does not render the egress "
        "gateway")
    # The learner's Gateway selector is not blamed for pods that are gone.
    egress = result.check("egress-gateway")
    assert egress.status == "blocked" and "spec.selector" not in egress.message


def test_start_state(tmp_path):
    """Nothing is awarded for what the learner has not done: the entry-point check waits for step 4's
    exit Gateway, and the log check is not evaluated off-cluster."""
    result = run("lab05", paths=[empty_file(tmp_path)])
    assert result.check("ready").passed
    assert result.check("egress-not-ingress").status == "blocked"
    assert "ALLOW_ANY" in result.check("registry-only").message
    assert result.check("egress-log").status == "not-evaluated"
    assert result.score == 1


def test_simulated_log_check_is_not_evaluated_and_left_out_of_the_score():
    result = run("lab05", paths=[str(LAB_DIR / "solutions" / "reference")])
    chk = result.check("egress-log")
    assert chk.status == "not-evaluated" and not chk.passed and chk.hint is None
    assert chk.message.startswith("Needs a live cluster")
    assert result.max_score == sum(c.points for c in LAB.checks) - chk.points
    assert result.to_json()["not_evaluated_points"] == chk.points


def test_exit_gateway_in_place_is_what_the_entry_point_check_credits():
    chk = run("lab05", paths=[str(LAB_DIR / "solutions" / "reference")]).check("egress-not-ingress")
    assert chk.passed and chk.message.startswith("Gateway default/httpbin-egress uses it as an exit for httpbin.org")
    assert "`unreachable`" in chk.message


def test_live_mode_without_operator_file_cannot_read_the_policy_and_says_why(fake_api, fake_kubeconfig):
    result = run("lab05", kubeconfig=fake_kubeconfig, only=["registry-only"])
    chk = result.check("registry-only")
    assert result.mode == "live" and not chk.passed
    assert "never read" in chk.message and "ConfigMap" in chk.message
    assert not [c for c in fake_api.calls() if "configmaps" in c.path]


def test_live_mode_reads_the_policy_from_the_operator_file_given(fake_api, fake_kubeconfig):
    iop = str(LAB_DIR / "solutions" / "reference" / "istio-operator.yaml")
    chk = run("lab05", paths=[iop], kubeconfig=fake_kubeconfig, only=["registry-only"]).check("registry-only")
    assert chk.passed and "istio-operator.yaml" in chk.message


def test_live_log_check_reports_an_unreadable_log(fake_api, fake_kubeconfig):
    for obj in _solution_objects():
        fake_api.add(obj)
    result = run("lab05", kubeconfig=fake_kubeconfig, only=["egress-log"])
    chk = result.check("egress-log")
    assert not chk.passed and not chk.skipped
    assert "could not be read through the API" in chk.message and "pods/log" in chk.hints[0]
    assert any(c.path.endswith("/log") or "/log?" in c.path for c in fake_api.calls())
    assert not [c for c in fake_api.calls() if "exec" in c.path]


HOP2 = ('[2026-11-30T10:00:00.000Z] "GET /get HTTP/1.1" 200 - via_upstream - "-" 0 254 180 179 "10.244.0.12" '
        '"curl/8.11.1" "7f3c" "httpbin.org" "52.1.2.3:80" outbound|80||httpbin.org 10.244.0.9:41234 '
        '10.244.0.9:8080 10.244.0.12:50000 - -')


def _egress_pods(fake_api) -> list[str]:
    return [p["metadata"]["name"] for p in fake_api.objects("Pod", "istio-system")
            if (p["metadata"].get("labels") or {}).get("istio") == "egressgateway"]


def test_live_log_check_finds_the_request_in_the_access_log(fake_api, fake_kubeconfig):
    fake_api.add_all(_solution_objects())
    pods = _egress_pods(fake_api)
    assert pods
    noise = "\n".join(f"[2026-11-30T09:59:{i:02d}.000Z] \"GET /healthz/ready HTTP/1.1\" 200" for i in range(60))
    for pod in pods:
        fake_api.set_log("istio-system", pod, "istio-proxy", noise + "\n" + HOP2 + "\n")
    chk = run("lab05", kubeconfig=fake_kubeconfig, only=["egress-log"]).check("egress-log")
    assert chk.passed, chk.message
    assert chk.message.startswith(f"Found {len(pods)} matching line(s) in the access log of "
                                  "istio-system/istio-egressgateway, e.g. [2026-11-30T10:00:00.000Z]")
    logs = [c for c in fake_api.calls("get") if c.path.endswith("/log")]
    assert {c.name for c in logs} == set(pods)
    assert all(c.query == {"container": "istio-proxy", "tailLines": "500"} for c in logs)
    assert not [c for c in fake_api.calls() if "exec" in c.path]


def test_live_log_check_without_the_request_says_how_to_send_one(fake_api, fake_kubeconfig):
    fake_api.add_all(_solution_objects())
    for pod in _egress_pods(fake_api):
        fake_api.set_log("istio-system", pod, "istio-proxy", HOP2.replace("httpbin.org", "example.com") + "\n")
    chk = run("lab05", kubeconfig=fake_kubeconfig, only=["egress-log"]).check("egress-log")
    assert not chk.passed and chk.message.startswith('No line with the authority "httpbin.org"')
    assert "kubectl exec deploy/curl -- curl -sI http://httpbin.org/headers" in chk.hints[0]


def test_live_log_line_with_a_5xx_is_not_counted_as_the_request_leaving(fake_api, fake_kubeconfig):
    """A 503 UF on hop 2 means the egress gateway could not get an answer from the host: no points."""
    fake_api.add_all(_solution_objects())
    failed_hop2 = HOP2.replace('" 200 - via_upstream', '" 503 UF upstream_reset_before_response_started')
    for pod in _egress_pods(fake_api):
        fake_api.set_log("istio-system", pod, "istio-proxy", failed_hop2 + "\n")
    chk = run("lab05", kubeconfig=fake_kubeconfig, only=["egress-log"]).check("egress-log")
    assert chk.status == "failed"
    assert chk.message.startswith("The egress gateway sent httpbin.org to outbound|80||httpbin.org but got no good "
                                  "answer") and "status 503" in chk.message
    assert "UF" in chk.hints[0] and "spec.resolution" in chk.hints[0]
    # Once a request is answered, the same log passes.
    for pod in _egress_pods(fake_api):
        fake_api.set_log("istio-system", pod, "istio-proxy", failed_hop2 + "\n" + HOP2 + "\n")
    assert run("lab05", kubeconfig=fake_kubeconfig, only=["egress-log"]).check("egress-log").passed


def test_live_log_refused_is_not_evaluated_and_names_the_role_to_apply(fake_api, fake_kubeconfig):
    """A 403 on pods/log is the grader's missing (optional) grant, not the learner's mistake (issue #12
    item 7): not-evaluated, its points out of max_score, the message naming the permission and the Role."""
    from graders.sources.live import LOG_ROLE, RBAC_FILE

    fake_api.add_all(_solution_objects())
    for pod in _egress_pods(fake_api):
        fake_api.set_log("istio-system", pod, "istio-proxy", HOP2 + "\n")
    granted = run("lab05", kubeconfig=fake_kubeconfig)
    assert granted.check("egress-log").passed
    fake_api.forbid("pods/log", verb="get", namespace="istio-system")
    result = run("lab05", kubeconfig=fake_kubeconfig)
    chk = result.check("egress-log")
    assert chk.status == "not-evaluated" and not chk.passed and not chk.hints
    assert "HTTP 403" in chk.message and 'cannot get resource "pods/log"' in chk.message
    assert "`get` on pods/log in namespace istio-system" in chk.message
    assert f"apply the optional Role {LOG_ROLE} in {RBAC_FILE}" in chk.message
    assert "grade a live cluster" not in chk.message  # it is a live cluster: the grant is what is missing
    assert result.max_score == granted.max_score - chk.points and result.score == granted.score - chk.points
    assert result.to_json()["not_evaluated_points"] == chk.points


def test_the_log_role_named_in_messages_is_the_one_in_the_rbac_file():
    import yaml

    from graders.sources.live import LOG_ROLE, RBAC_FILE

    docs = yaml.safe_load_all((LAB_DIR.parents[1] / RBAC_FILE).read_text())
    roles = [d for d in docs if d and d.get("kind") == "Role"]
    assert [r["metadata"]["name"] for r in roles] == [LOG_ROLE]
    assert roles[0]["rules"] == [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]


def _solution_objects() -> list[dict]:
    from graders.yamlio import load_documents

    out = []
    for path in sorted((LAB_DIR / "solutions" / "reference").glob("*.yaml")):
        out += [r.obj for r in load_documents(path) if r.obj.get("kind") != "IstioOperator"]
    return out


def test_access_log_lines_are_recognised():
    from graders.labs.lab05 import egress_lines, log_status

    hop2 = ('[2026-11-30T10:00:00.000Z] "GET /get HTTP/1.1" 200 - via_upstream - "-" 0 254 180 179 "10.244.0.12" '
            '"curl/8.11.1" "7f3c" "httpbin.org" "52.1.2.3:80" outbound|80||httpbin.org 10.244.0.9:41234 '
            '10.244.0.9:8080 10.244.0.12:50000 - -')
    other = hop2.replace("httpbin.org", "example.com")
    refused = ('[2026-11-30T10:00:01.000Z] "GET /get HTTP/1.1" 502 - direct_response - "-" 0 0 0 - "-" "curl/8.11.1" '
               '"8a1d" "httpbin.org" "-" - - 10.96.0.1:80 10.244.0.12:50002 - block_all')
    upstream_failed = hop2.replace('" 200 - via_upstream', '" 503 UF upstream_reset_before_response_started')
    not_found = hop2.replace('" 200 -', '" 404 -')
    text = "\n".join([other, hop2, refused, upstream_failed, not_found])
    assert egress_lines(text, "httpbin.org") == ([hop2, not_found], [upstream_failed])
    assert (log_status(hop2), log_status(upstream_failed), log_status("garbage")) == (200, 503, None)


def test_ready_names_a_missing_client(tmp_path):
    """Without `lab setup 5` (no start state laid over the baseline) the curl client is missing."""
    result = run("lab05", paths=[empty_file(tmp_path)], baseline=True, only=["ready"])
    assert result.check("ready").passed  # the start state is always laid under the learner's files
    no_start = Context(load_state([empty_file(tmp_path)]))
    outcome = ready(no_start)
    assert not outcome.passed and "default/curl" in outcome.message and "lab setup 5" in outcome.hints[1]


def test_snapshot_mode_is_honest_about_what_a_snapshot_cannot_hold(tmp_path):
    from test_lab03 import snapshot_of

    snap = snapshot_of(tmp_path, [LAB_DIR / "start", LAB_DIR / "solutions" / "reference"], [])
    result = run("lab05", snapshot=snap)
    assert result.mode == "snapshot"
    assert failing(result) == {"registry-only", "egress-log"}  # the mesh config is ConfigMap data: never in a snapshot
    assert "never read" in result.check("registry-only").message
    assert result.check("egress-log").status == "not-evaluated"  # snapshots hold no pod logs
    assert "snapshot target" in result.check("egress-log").message
    iop = str(LAB_DIR / "solutions" / "reference" / "istio-operator.yaml")
    assert run("lab05", snapshot=snap, paths=[iop]).check("registry-only").passed


def test_notebook_text():
    from test_lab04 import assert_notebook_guides_the_learner

    markdown = assert_notebook_guides_the_learner(LAB_DIR.parent / "lab05-egress.ipynb", "lab05")
    # REGISTRY_ONLY's 502 is the block_all virtual host's direct response (httproute.go), not the BlackHoleCluster.
    assert "`block_all`" in markdown and "direct response with status 502" in markdown
    assert "(the request goes to Envoy's `BlackHoleCluster`)" not in markdown
    # The step 1 check is graded after step 4: its cell follows the gateway-route check.
    import json

    sources = ["".join(c["source"]) for c in json.loads((LAB_DIR.parent / "lab05-egress.ipynb").read_text())["cells"]]
    assert sources.index('lab.check("egress-not-ingress")') > sources.index('lab.check("gateway-route")')


def test_host_case_follows_istiod_per_use(tmp_path):
    """VirtualService hosts spelled HTTPBin.org: a sidecar matches them to the ServiceEntry's httpbin.org
    lower-cased on both sides (pilot/pkg/networking/core/httproute.go:260, :340), so the mesh hop holds;
    the egress Gateway binds them as case-sensitive strings (pickMatchingGatewayHosts, gateway.go:1069), so
    its server for httpbin.org gets no route from them (host.Name comparison, pkg/config/host/name.go)."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(LAB_DIR / "solutions" / "reference", work)
    gw = work / "egress-gateway.yaml"
    gw.write_text(gw.read_text().replace("  hosts: [httpbin.org]\n  gateways:", "  hosts: [HTTPBin.org]\n  gateways:"))
    result = run("lab05", paths=[str(work)])
    assert result.check("mesh-route").passed, result.check("mesh-route").message
    assert result.check("gateway-route").status == "failed", result.check("gateway-route").message
