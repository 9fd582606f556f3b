"""Every analyzer: a passing and a failing case built from realistic objects laid over the
simulated lab cluster (kind + Istio demo profile + Bookinfo)."""

from __future__ import annotations

import pytest
from engine_helpers import (
    HTTPBIN_SERVICE_ENTRY,
    PRODUCTPAGE_TWO_PORTS,
    codes,
    course_operator,
    docs,
    gateway,
    only,
    productpage_deployment,
    route_to,
    state_of,
    virtual_service,
    vs_with_rules,
)

from graders.analyzers import analyze, analyzers
from graders.catalogue import CATALOGUE, LOAD_CODES

IOP_HEAD = """
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: %s}
spec:
  profile: empty
  components:
    ingressGateways:
"""


def second_gateway(labels: str, name: str = "ingress-2") -> str:
    return IOP_HEAD % name + f"""    - name: istio-ingressgateway-2
      namespace: istio-system
      enabled: true
      label: {labels}
      k8s:
        service:
          type: NodePort
          ports:
          - {{name: http2, port: 80, targetPort: 8080, nodePort: 30081}}
"""


def test_correct_bookinfo_exposure_has_no_findings(tmp_path):
    state = state_of(tmp_path, docs(gateway(), virtual_service()))
    assert analyze(state) == []


def test_every_code_is_in_the_catalogue_and_declared_by_one_analyzer():
    declared = [c for a in analyzers() for c in a.codes]
    assert len(declared) == len(set(declared))
    assert set(declared) | set(LOAD_CODES) == set(CATALOGUE)
    for a in analyzers():
        assert a.reads, a.name


# --- GW-SELECTOR-NO-WORKLOAD ------------------------------------------------------------------
def test_helm_style_selector_matches_no_pod(tmp_path):
    state = state_of(tmp_path, docs(gateway(selector="ingress"), virtual_service()))
    f = only(state, "GW-SELECTOR-NO-WORKLOAD")
    assert f.resources == ("Gateway default/bookinfo-gateway",)
    assert f.severity == "error" and f.istio_code == "IST0101" and f.kiali_code == "KIA0302"
    assert "istio=ingress" in f.message
    assert "istio=ingressgateway (istio-system/istio-ingressgateway)" in f.hint


# --- GW-PORT-NOT-ON-SERVICE / GW-PORT-PRIVILEGED -------------------------------------------------
@pytest.mark.parametrize("port", [80, 8080])
def test_service_port_and_target_port_both_pass(tmp_path, port):
    state = state_of(tmp_path, docs(gateway(port=port), virtual_service()))
    assert codes(state) == []


def test_port_7070_is_not_on_the_gateway_service(tmp_path):
    state = state_of(tmp_path, docs(gateway(port=7070), virtual_service()))
    f = only(state, "GW-PORT-NOT-ON-SERVICE")
    assert f.resources == ("Gateway default/bookinfo-gateway", "Deployment istio-system/istio-ingressgateway",
                           "Service istio-system/istio-ingressgateway")
    assert "80->8080" in f.hint and f.istio_code == "IST0162"
    assert "GW-PORT-PRIVILEGED" not in codes(state)


def test_privileged_port_without_mapping_is_dropped(tmp_path):
    state = state_of(tmp_path, docs(gateway(port=81), virtual_service()))
    assert sorted(codes(state)) == ["GW-PORT-NOT-ON-SERVICE", "GW-PORT-PRIVILEGED"]
    f = only(state, "GW-PORT-PRIVILEGED")
    assert f.details["listener"] == 81 and "81->8081" in f.hint


def test_service_port_81_to_81_is_still_privileged(tmp_path):
    iop = course_operator("          - {name: http-81, port: 81, targetPort: 81}")
    state = state_of(tmp_path, docs(iop, gateway(port=81), virtual_service()))
    assert codes(state) == ["GW-PORT-PRIVILEGED"]


def test_service_port_81_to_8081_works(tmp_path):
    iop = course_operator("          - {name: http-81, port: 81, targetPort: 8081}")
    state = state_of(tmp_path, docs(iop, gateway(port=81), virtual_service()))
    assert codes(state) == []


def test_root_gateway_may_bind_low_ports(tmp_path):
    iop = course_operator("          - {name: http-81, port: 81, targetPort: 81}", run_as_root=True)
    state = state_of(tmp_path, docs(iop, gateway(port=81), virtual_service()))
    assert codes(state) == []


# --- GW-CONFLICT ------------------------------------------------------------------------------------
def _two_bookinfos(port_a=8080, port_b=8080, hosts_a='"*"', hosts_b='"*"', protocol_b="HTTP", ts_a=None, ts_b=None):
    return docs(
        gateway(port=port_a, hosts=hosts_a, created=ts_a), virtual_service(),
        gateway(ns="test", port=port_b, hosts=hosts_b, protocol=protocol_b, created=ts_b),
        virtual_service(ns="test", gateways="test/bookinfo-gateway"))


def test_same_port_and_wildcard_hosts_conflict_older_wins(tmp_path):
    state = state_of(tmp_path, _two_bookinfos())
    f = only(state, "GW-CONFLICT")
    assert f.details["winner"] == "default/bookinfo-gateway" and f.details["loser"] == "test/bookinfo-gateway"
    assert f.resources[:2] == ("Gateway test/bookinfo-gateway", "Gateway default/bookinfo-gateway")
    assert "merged" in f.message and "Simulated cluster" in f.message
    assert f.istio_code == "IST0145" and f.kiali_code == "KIA0301"


def test_creation_timestamp_decides_the_winner(tmp_path):
    state = state_of(tmp_path, _two_bookinfos(ts_a="2026-03-02T10:00:00Z", ts_b="2026-03-01T10:00:00Z"))
    f = only(state, "GW-CONFLICT")
    assert f.details["winner"] == "test/bookinfo-gateway"
    assert "test/bookinfo-gateway was created first" in f.message


def test_same_second_falls_back_to_name(tmp_path):
    text = docs(gateway(name="zeta", created="2026-03-01T10:00:00Z"), gateway(name="alpha", ns="test",
                                                                             created="2026-03-01T10:00:00Z"))
    f = only(state_of(tmp_path, text), "GW-CONFLICT")
    assert f.details["winner"] == "test/alpha" and "same second" in f.message


def test_80_and_8080_collide_on_the_resolved_listener(tmp_path):
    f = only(state_of(tmp_path, _two_bookinfos(port_a=80, port_b=8080)), "GW-CONFLICT")
    assert f.details["listener"] == 8080
    assert (f.details["winner_port"], f.details["loser_port"]) == (80, 8080)


@pytest.mark.parametrize(("hosts_a", "hosts_b", "conflict"), [
    ('"bookinfo.default.example"', '"bookinfo.test.example"', False),
    ('"*.example.com"', '"foo.example.com"', True),
    ('"foo.example.com"', '"*.example.com"', True),
    ('"*.example.com"', '"*.com"', True),
    ('"*.a.example.com"', '"*.b.example.com"', False),
    ('"default/*"', '"test/*"', True),  # namespace prefixes limit binding, not the listener's hosts
])
def test_host_overlap_is_wildcard_aware(tmp_path, hosts_a, hosts_b, conflict):
    state = state_of(tmp_path, _two_bookinfos(hosts_a=hosts_a, hosts_b=hosts_b))
    assert ("GW-CONFLICT" in codes(state)) is conflict


def test_wildcard_and_specific_http_hosts_are_not_merged(tmp_path):
    f = only(state_of(tmp_path, _two_bookinfos(hosts_a='"*"', hosts_b='"preview.example.com"')), "GW-CONFLICT")
    assert f.severity == "warning" and "nothing is merged" in f.message
    assert "test/bookinfo-gateway takes preview.example.com" in f.message


def test_identical_server_hosts_with_distinct_virtualservice_hosts_shadow_nothing_yet(tmp_path):
    text = docs(gateway(), virtual_service(hosts='"a.example.com"'), gateway(ns="test"),
                virtual_service(ns="test", gateways="test/bookinfo-gateway", hosts='"b.example.com"',
                                dest="productpage.default.svc.cluster.local"))
    f = only(state_of(tmp_path, text), "GW-CONFLICT")
    assert f.severity == "warning" and "nothing is shadowed" in f.message


def test_https_identical_host_drops_the_newer_server(tmp_path):
    text = docs(gateway(name="a", port=443, hosts='"shop.example.com"', protocol="HTTPS"),
                gateway(name="b", ns="test", port=443, hosts='"shop.example.com"', protocol="HTTPS"))
    f = only(state_of(tmp_path, text), "GW-CONFLICT")
    assert f.details["listener"] == 8443 and "drops the newer one of test/b" in f.message
    assert f.severity == "error"


def test_http_and_https_on_one_listener_reject_the_newer(tmp_path):
    text = docs(gateway(name="a", port=80, hosts='"a.example.com"'),
                gateway(name="b", ns="test", port=8080, hosts='"b.example.com"', protocol="HTTPS"))
    f = only(state_of(tmp_path, text), "GW-CONFLICT")
    assert "rejects the newer HTTPS server of test/b" in f.message


def test_separate_workloads_do_not_conflict(tmp_path):
    text = docs(second_gateway("{app: istio-ingressgateway-2, istio: ingressgateway-2}"),
                gateway(), gateway(ns="test", selector="ingressgateway-2"))
    assert "GW-CONFLICT" not in codes(state_of(tmp_path, text))


def test_conflict_detection_is_linear_not_quadratic(tmp_path):
    # 300 Gateways all on "*": every newer one conflicts with the oldest, one finding each.
    text = docs(*(gateway(name=f"gw{i:03d}") for i in range(300)))
    found = [f for f in analyze(state_of(tmp_path, text)) if f.code == "GW-CONFLICT"]
    assert len(found) == 299 and {f.details["winner"] for f in found} == {"default/gw000"}


# --- GW-SHARED-WORKLOAD -------------------------------------------------------------------------
def test_second_gateway_that_kept_istio_ingressgateway_is_shared(tmp_path):
    text = docs(second_gateway("{app: istio-ingressgateway-2}"), gateway(), virtual_service())
    f = only(state_of(tmp_path, text), "GW-SHARED-WORKLOAD")
    assert f.details["count"] == 2
    assert "Deployment istio-system/istio-ingressgateway-2" in f.resources
    assert "Deployment istio-system/istio-ingressgateway" in f.resources


def test_second_gateway_with_both_labels_overridden_is_not_shared(tmp_path):
    text = docs(second_gateway("{app: istio-ingressgateway-2, istio: ingressgateway-2}"), gateway(), virtual_service())
    assert "GW-SHARED-WORKLOAD" not in codes(state_of(tmp_path, text))


def _gateway_pod(name: str, ns: str = "istio-system", app: str = "istio-ingressgateway") -> str:
    """A gateway pod as a hand-trimmed ``kubectl get pod -o yaml`` shows it: no ownerReferences."""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{app: {app}, istio: ingressgateway}}}}
spec:
  containers: [{{name: istio-proxy, args: [proxy, router], ports: [{{containerPort: 8080}}]}}]
status: {{conditions: [{{type: Ready, status: "True"}}]}}
"""


def test_ownerless_pods_a_deployment_selects_are_one_workload(tmp_path):
    """Two ownerless replicas of the ingress gateway are its Deployment's pods (a ReplicaSet adopts
    the orphans its selector matches), not two Deployments named after the pods (issue #10 item 11)."""
    state = state_of(tmp_path, docs(_gateway_pod("ingress-a"), _gateway_pod("ingress-b"), gateway(),
                                    virtual_service()))
    pods = [p for p in state.pods if p.meta.name in ("ingress-a", "ingress-b")]
    assert {p.owner for p in pods} == {"istio-ingressgateway"}
    assert "GW-SHARED-WORKLOAD" not in codes(state)
    assert not [p for p in state.pods if p.from_template and p.owner == "istio-ingressgateway"]


def test_a_truly_bare_pod_is_named_as_a_pod(tmp_path):
    bare = _gateway_pod("handmade", ns="default", app="handmade")
    f = only(state_of(tmp_path, docs(bare, gateway(), virtual_service())), "GW-SHARED-WORKLOAD")
    assert "Pod default/handmade" in f.resources and "Deployment default/handmade" not in f.resources
    assert "Deployment istio-system/istio-ingressgateway" in f.resources


def test_conflicts_are_not_duplicated_per_ownerless_pod(tmp_path):
    text = docs(_gateway_pod("ingress-a"), _gateway_pod("ingress-b"), gateway(name="one"), gateway(name="two"))
    found = [f for f in analyze(state_of(tmp_path, text)) if f.code == "GW-CONFLICT"]
    assert [f.resources[-1] for f in found] == ["Deployment istio-system/istio-ingressgateway"]


# --- GW-NOT-EXTERNALLY-REACHABLE ------------------------------------------------------------------
def test_egress_gateway_as_ingress_is_not_reachable(tmp_path):
    state = state_of(tmp_path, docs(gateway(selector="egressgateway", port=80), virtual_service()))
    f = only(state, "GW-NOT-EXTERNALLY-REACHABLE")
    assert f.severity == "warning"
    assert "Service istio-system/istio-egressgateway" in f.resources


def test_egress_pattern_is_only_informational(tmp_path):
    vs = virtual_service(gateways="bookinfo-gateway, mesh", hosts="bookinfo.example.com")  # "*" is refused with mesh
    f = only(state_of(tmp_path, docs(gateway(selector="egressgateway", port=80), vs)), "GW-NOT-EXTERNALLY-REACHABLE")
    assert f.severity == "info" and "egress pattern" in f.message


# --- VS-GATEWAY-NOT-FOUND ---------------------------------------------------------------------------
def test_short_gateway_name_resolves_in_the_virtualservice_namespace(tmp_path):
    state = state_of(tmp_path, docs(gateway(), virtual_service(ns="test", gateways="bookinfo-gateway")))
    f = only(state, "VS-GATEWAY-NOT-FOUND")
    assert f.resources == ("VirtualService test/bookinfo",)
    assert "Gateway test/bookinfo-gateway" in f.message and "'default/bookinfo-gateway'" in f.hint


@pytest.mark.parametrize("ref", ["default/bookinfo-gateway", "bookinfo-gateway.default.svc.cluster.local"])
def test_qualified_gateway_references_resolve(tmp_path, ref):
    vs = virtual_service(ns="test", gateways=ref, dest="productpage.default.svc.cluster.local")
    assert codes(state_of(tmp_path, docs(gateway(), vs))) == []


def test_mesh_is_not_a_gateway(tmp_path):
    assert codes(state_of(tmp_path, docs(virtual_service(gateways="mesh", hosts="productpage")))) == []


# --- VS-HOST-NOT-IN-GATEWAY ------------------------------------------------------------------------
def test_vs_host_outside_gateway_hosts(tmp_path):
    text = docs(gateway(hosts='"bookinfo.example.com"'), virtual_service(hosts='"other.example.com"'))
    f = only(state_of(tmp_path, text), "VS-HOST-NOT-IN-GATEWAY")
    assert f.resources == ("VirtualService default/bookinfo", "Gateway default/bookinfo-gateway")
    assert "bookinfo.example.com" in f.hint and f.istio_code == "IST0132"


@pytest.mark.parametrize(("gw_hosts", "vs_hosts"), [('"bookinfo.example.com"', '"*"'),
                                                    ('"*.example.com"', '"bookinfo.example.com"'),
                                                    ('"default/*"', '"bookinfo.example.com"')])
def test_vs_host_matches_by_wildcard(tmp_path, gw_hosts, vs_hosts):
    assert codes(state_of(tmp_path, docs(gateway(hosts=gw_hosts), virtual_service(hosts=vs_hosts)))) == []


def test_gateway_namespace_prefix_keeps_other_namespaces_out(tmp_path):
    vs = virtual_service(ns="test", gateways="default/bookinfo-gateway", dest="productpage.default.svc.cluster.local")
    f = only(state_of(tmp_path, docs(gateway(hosts='"default/*"'), vs)), "VS-HOST-NOT-IN-GATEWAY")
    assert "namespace default" in f.hint


# --- VS-DESTINATION-NOT-FOUND / PORT-MISMATCH / SVC-NO-READY-ENDPOINTS --------------------------------
def test_dotted_short_name_is_taken_literally(tmp_path):
    f = only(state_of(tmp_path, docs(gateway(), virtual_service(dest="productpage.default"))),
             "VS-DESTINATION-NOT-FOUND")
    assert "productpage.default.svc.cluster.local" in f.hint and f.kiali_code == "KIA1101"


def test_short_name_from_another_namespace_is_not_found(tmp_path):
    text = docs(gateway(), virtual_service(ns="test", gateways="default/bookinfo-gateway"))
    f = only(state_of(tmp_path, text), "VS-DESTINATION-NOT-FOUND")
    assert "productpage.test.svc.cluster.local" in f.message and "exists in default" in f.hint


def test_service_entry_host_is_a_valid_destination(tmp_path):
    text = docs(gateway(), virtual_service(dest="httpbin.org", port=80), HTTPBIN_SERVICE_ENTRY)
    assert codes(state_of(tmp_path, text)) == []


def test_target_port_instead_of_service_port(tmp_path):
    f = only(state_of(tmp_path, docs(gateway(), virtual_service(port=8080))), "VS-DESTINATION-PORT-MISMATCH")
    assert "port 8080, which the Service does not have" in f.message and "9080" in f.hint
    assert f.istio_code == "IST0101"  # istioctl: "Referenced host:port not found"


def test_omitted_port_on_a_multi_port_service(tmp_path):
    state = state_of(tmp_path, docs(PRODUCTPAGE_TWO_PORTS, gateway(), virtual_service(port=None)))
    f = only(state, "VS-DESTINATION-PORT-MISMATCH")
    assert "several ports" in f.message and f.istio_code == "IST0112"


# --- VS-RULE-UNREACHABLE -------------------------------------------------------------------------
def rules_vs(*rules: str) -> str:
    return docs(gateway(), vs_with_rules(*rules))


TO_PRODUCTPAGE = route_to("productpage")


@pytest.mark.parametrize(("first", "why", "istio_code"), [
    (f"{{{TO_PRODUCTPAGE}}}", "it has no match", "IST0130"),
    (f"{{match: [{{uri: {{prefix: /}}}}], {TO_PRODUCTPAGE}}}", "its match uri prefix /", "IST0131"),  # not IST0130
    (f"{{match: [{{uri: {{regex: '.*'}}}}], {TO_PRODUCTPAGE}}}", "its match uri regex .*", None),
    (f"{{match: [{{uri: {{exact: /x}}}}, {{uri: {{prefix: /}}}}], {TO_PRODUCTPAGE}}}", "its match uri prefix /",
     "IST0131"),
])
def test_rules_after_a_catch_all_are_unreachable(tmp_path, first, why, istio_code):
    text = rules_vs(first, f"{{name: api, match: [{{uri: {{prefix: /api}}}}], {TO_PRODUCTPAGE}}}",
                    f"{{match: [{{uri: {{prefix: /static}}}}], {TO_PRODUCTPAGE}}}")
    f = only(state_of(tmp_path, text), "VS-RULE-UNREACHABLE")
    assert f.message.startswith(f"VirtualService default/bookinfo: http[1] 'api', http[2] come after http[0], "
                                f"which takes every request ({why}).")
    assert "so they never reach Envoy" in f.message and f.istio_code == istio_code
    assert f.hint.startswith("Reorder spec.http so that every rule can match: move http[0] to the end of spec.http")


@pytest.mark.parametrize("first", [
    f"{{match: [{{uri: {{prefix: /}}, headers: {{x-canary: {{exact: 'yes'}}}}}}], {TO_PRODUCTPAGE}}}",
    f"{{match: [{{uri: {{prefix: /}}, gateways: [mesh]}}], {TO_PRODUCTPAGE}}}",  # only where it applies
    f"{{match: [{{uri: {{prefix: /}}, port: 80}}], {TO_PRODUCTPAGE}}}",
    f"{{match: [{{uri: {{prefix: /p}}}}], {TO_PRODUCTPAGE}}}",
])
def test_conditional_or_narrow_first_rules_leave_the_rest_reachable(tmp_path, first):
    text = rules_vs(first, f"{{match: [{{uri: {{prefix: /api}}}}], {TO_PRODUCTPAGE}}}")
    assert "VS-RULE-UNREACHABLE" not in codes(state_of(tmp_path, text))


def test_catch_all_last_is_fine(tmp_path):
    text = rules_vs(f"{{match: [{{uri: {{prefix: /api}}}}], {TO_PRODUCTPAGE}}}", f"{{{TO_PRODUCTPAGE}}}")
    assert codes(state_of(tmp_path, text)) == []


def test_scaled_to_zero_has_no_ready_endpoints(tmp_path):
    dep = productpage_deployment(0)
    f = only(state_of(tmp_path, docs(dep, gateway(), virtual_service())), "SVC-NO-READY-ENDPOINTS")
    assert f.resources == ("VirtualService default/bookinfo", "Service default/productpage")
    assert "none is Ready" in f.message


# --- MANIFEST-INVALID and ISTIO-NOT-INSTALLED ---------------------------------------------------------
def test_invalid_field_is_reported_and_the_rest_still_analyzed(tmp_path):
    broken = gateway(name="broken").replace("number: 8080", 'number: "8080"')
    state = state_of(tmp_path, docs(broken, gateway(port=7070), virtual_service()))
    found = analyze(state)
    invalid = [f for f in found if f.code == "MANIFEST-INVALID"]
    assert len(invalid) == 1
    assert "learner.yaml:" in invalid[0].message and "spec.servers[0].port.number" in invalid[0].message
    assert invalid[0].resources == ("Gateway default/broken",)
    assert "GW-PORT-NOT-ON-SERVICE" in [f.code for f in found]


@pytest.mark.parametrize(("text", "needle"), [
    ("just a string\n", "must be a Kubernetes object"),
    ("kind: Gateway\nmetadata: {name: x}\n", "missing apiVersion or kind"),
    ("apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: x}\n", "not a served version"),
    ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {labels: {a: b}}\n", "metadata.name is missing"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: s, labels: {tier: 3}}\n", "label values must be strings"),
])
def test_manifest_invalid_variants(tmp_path, text, needle):
    f = only(state_of(tmp_path, text), "MANIFEST-INVALID")
    assert needle in f.message + f.hint


def test_gateway_api_objects_are_parsed_not_skipped(tmp_path):
    """h10-gwapi (issue #15): Gateway API objects join the state (was GATEWAY-API-NOT-ANALYZED)."""
    route = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bookinfo}
spec:
  parentRefs: [{name: bookinfo-gateway}]
  rules: [{backendRefs: [{name: productpage, port: 9080}]}]
"""
    path = tmp_path / "learner.yaml"
    path.write_text(route)
    from graders.sources import load_state

    state = load_state([str(path)])
    assert [r.meta.ref for r in state.http_routes] == ["HTTPRoute default/bookinfo"]
    assert not any(f.code == "MANIFEST-INVALID" for f in state.load_findings)


def test_port_not_on_service_message_does_not_promise_a_privileged_listener(tmp_path):
    f = only(state_of(tmp_path, docs(gateway(port=81), virtual_service())), "GW-PORT-NOT-ON-SERVICE")
    assert "skips ports below 1024" in f.message and "opens an Envoy listener" not in f.message
    g = only(state_of(tmp_path, docs(gateway(port=7070), virtual_service())), "GW-PORT-NOT-ON-SERVICE")
    assert "opens an Envoy listener on 7070" in g.message


def test_istio_not_installed_in_a_snapshot(tmp_path):
    snap = tmp_path / "snap.yaml"
    snap.write_text("apiVersion: v1\nkind: List\nitems: []\nx-graders: {version: 1, istioInstalled: false}\n")
    from graders.sources import load_state

    assert codes(load_state(snapshot=str(snap))) == ["ISTIO-NOT-INSTALLED"]


# --- VS-SUBSET-NOT-FOUND (issue #10 item 3) -----------------------------------------------------------
REVIEWS_DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
"""


def _to_reviews(subset: str, host: str = "reviews") -> str:
    return vs_with_rules(f"{{route: [{{destination: {{host: {host}, port: {{number: 9080}}, subset: {subset}}}}}]}}")


def test_route_to_an_undefined_subset_is_reported(tmp_path):
    f = only(state_of(tmp_path, docs(gateway(), REVIEWS_DR, _to_reviews("v9"))), "VS-SUBSET-NOT-FOUND")
    assert f.resources == ("VirtualService default/bookinfo", "DestinationRule default/reviews")
    assert f.istio_code == "IST0101" and f.severity == "error"
    assert "outbound|9080|v9|reviews.default.svc.cluster.local" in f.message and "v1" in f.hint


@pytest.mark.parametrize("host", ["reviews", "reviews.default.svc.cluster.local"])
def test_route_to_a_defined_subset_is_fine(tmp_path, host):
    state = state_of(tmp_path, docs(gateway(), REVIEWS_DR, _to_reviews("v1", host)))
    assert "VS-SUBSET-NOT-FOUND" not in codes(state)


def test_subset_without_any_destination_rule_says_create_one(tmp_path):
    f = only(state_of(tmp_path, docs(gateway(), _to_reviews("v1"))), "VS-SUBSET-NOT-FOUND")
    assert f.resources == ("VirtualService default/bookinfo",) and "create a DestinationRule" in f.hint


def test_analyze_and_trace_agree_on_an_undefined_subset(tmp_path):
    from graders.trace import Request, trace

    state = state_of(tmp_path, docs(gateway(), REVIEWS_DR, _to_reviews("v9")))
    assert trace(state, Request(port=80, host="x", path="/")).outcome == "no-cluster"
    assert "VS-SUBSET-NOT-FOUND" in codes(state)


# --- VS-RULE-UNREACHABLE: a repeated or covered match (issue #10 item 4) ---------------------------
@pytest.mark.parametrize(("first", "dead", "word"), [
    ("{uri: {prefix: /api}}", "{uri: {prefix: /api}}", "repeats"),  # IST0130 "all matches used by prior rules"
    ("{uri: {prefix: /api}}", "{uri: {prefix: /api/v1}}", "covers"),  # IST0131 only (info) in istioctl
    ("{uri: {prefix: /api}}", "{uri: {exact: /api/v1}, method: {exact: GET}}", "covers"),
    ("{headers: {x-user: {}}}", "{headers: {x-user: {exact: ann}}, uri: {prefix: /a}}", "covers"),
    ("{uri: {prefix: /API}, ignoreUriCase: true}", "{uri: {prefix: /api/v1}}", "covers"),
])
def test_a_rule_whose_matches_an_earlier_rule_takes_is_unreachable(tmp_path, first, dead, word):
    text = rules_vs(f"{{name: early, match: [{first}], {TO_PRODUCTPAGE}}}",
                    f"{{name: late, match: [{dead}], {TO_PRODUCTPAGE}}}", f"{{{TO_PRODUCTPAGE}}}")
    f = only(state_of(tmp_path, text), "VS-RULE-UNREACHABLE")
    assert f.message.startswith("VirtualService default/bookinfo: http[1] 'late' comes after http[0] 'early', "
                                "which already takes every request it matches (")
    assert f" {word} " in f.message and f.istio_code == ("IST0130" if word == "repeats" else "IST0131")
    assert "put http[1] 'late' before http[0] 'early'" in f.hint and "so it never receives a request" in f.message


@pytest.mark.parametrize(("first", "later"), [
    ("{uri: {prefix: /api/v1}}", "{uri: {prefix: /api}}"),  # the narrower one first: both reachable
    ("{uri: {prefix: /api}}", "{uri: {prefix: /apx}}"),
    ("{uri: {prefix: /api}, headers: {x-a: {exact: b}}}", "{uri: {prefix: /api/v1}}"),
    ("{uri: {prefix: /api}}", "{uri: {prefix: /API/v1}, ignoreUriCase: true}"),  # also /API/v1, which /api misses
    ("{uri: {regex: '/api.*'}}", "{uri: {prefix: /api}}"),  # regexes are only compared literally
    ("{uri: {prefix: /api}, port: 80}", "{uri: {prefix: /api/v1}}"),
    ("{uri: {prefix: /api}, withoutHeaders: {x-a: {}}}", "{uri: {prefix: /api/v1}}"),
])
def test_a_rule_that_still_gets_some_requests_is_not_flagged(tmp_path, first, later):
    text = rules_vs(f"{{match: [{first}], {TO_PRODUCTPAGE}}}", f"{{match: [{later}], {TO_PRODUCTPAGE}}}")
    assert "VS-RULE-UNREACHABLE" not in codes(state_of(tmp_path, text))


def test_one_reachable_match_keeps_the_rule(tmp_path):
    text = rules_vs(f"{{match: [{{uri: {{prefix: /api}}}}], {TO_PRODUCTPAGE}}}",
                    f"{{match: [{{uri: {{prefix: /api}}}}, {{uri: {{prefix: /b}}}}], {TO_PRODUCTPAGE}}}")
    assert "VS-RULE-UNREACHABLE" not in codes(state_of(tmp_path, text))


# --- docstrings and messages that describe Istio (issue #10 item 15) -----------------------------
@pytest.mark.parametrize(("ref", "says"), [
    ("other/bookinfo-gateway", "resolves to Gateway other/bookinfo-gateway, and no such Gateway exists"),
    ("nope", "(a name without a namespace means the VirtualService's own namespace, default)"),
    ("nope.other", "(the legacy form name.namespace)"),
])
def test_gateway_not_found_explains_only_the_form_used(tmp_path, ref, says):
    text = docs(gateway(), virtual_service(gateways=ref))
    f = only(state_of(tmp_path, text), "VS-GATEWAY-NOT-FOUND")
    assert says in f.message
    assert ("without a namespace" in f.message) == (ref == "nope")


def test_docstrings_describe_istio_as_its_source_does():
    from graders.analyzers import gateway_selector, vs_gateways, vs_rules

    assert "exact selector equality" not in gateway_selector.__doc__
    assert "not by selector equality" in gateway_selector.__doc__
    assert "only normalises the prefixes away" not in vs_gateways.__doc__
    assert "host.NamesForNamespace" in vs_gateways.__doc__
    assert "validation.go" in vs_rules.__doc__ and "IST0131" in vs_rules.__doc__


# --- what the cluster refuses is MANIFEST-INVALID (issue #10 item 13) ----------------------------
def _gw_server(port: str, hosts: str = '["bookinfo.example.com"]', extra: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: g, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {port}
    hosts: {hosts}{extra}
"""


@pytest.mark.parametrize(("text", "field", "needle"), [
    (_gw_server("{number: 80, protocol: HTTP}"), "spec.servers[0].port.name", "Gateway CRD's schema requires it"),
    (_gw_server("{number: 80, name: http}"), "spec.servers[0].port.protocol", "Gateway CRD's schema requires it"),
    (_gw_server("{number: 80, name: http, protocol: HTTPX}"), "spec.servers[0].port.protocol", "not a protocol"),
    (_gw_server("{number: 70000, name: http, protocol: HTTP}"), "spec.servers[0].port.number", "1-65535"),
    (_gw_server("{number: 443, name: https, protocol: HTTPS}"), "spec.servers[0].tls", "is required for an HTTPS"),
    (_gw_server("{number: 80, name: http, protocol: HTTP}", '["**"]'), "spec.servers[0].hosts[0]",
     "short names are not allowed"),  # istiod checks the dot first (validateSidecarOrGatewayHostnamePart)
    (_gw_server("{number: 80, name: http, protocol: HTTP}", '["**.example.com"]'), "spec.servers[0].hosts[0]",
     "partial wildcard"),
    (_gw_server("{number: 80, name: http, protocol: HTTP}", '["*foo.example.com"]'), "spec.servers[0].hosts[0]",
     "partial wildcard"),
    (_gw_server("{number: 80, name: http, protocol: HTTP}", '["productpage"]'), "spec.servers[0].hosts[0]",
     "short names are not allowed"),
    (_gw_server("{number: 80, name: http, protocol: HTTP}", '["Not_A_Namespace/a.example.com"]'),
     "spec.servers[0].hosts[0]", "is not a namespace"),
    (_gw_server("{number: 80, name: http, protocol: HTTP}",
                extra="\n  - port: {number: 8081, name: http, protocol: HTTP}\n    hosts: [b.example.com]"),
     "spec.servers[1].port.name", "must be unique"),
    (_gw_server("{number: 80, name: http, protocol: HTTP}").replace("name: g,", "name: UPPER_case.bad name,"),
     "metadata.name", "lowercase RFC 1123 subdomain"),
    (_gw_server("{number: 80, name: http, protocol: HTTP}").replace("name: g,", "name: my.gateway,"),
     "metadata.name", "a Gateway name is a DNS label"),
    ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {selector: {istio: x}}\n",
     "spec.servers", "at least one server"),
    ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec: {hosts: ['**.example.com'], gateways: [g], http: [{route: [{destination: {host: a}}]}]}\n",
     "spec.hosts[0]", "not a DNS label"),
    ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec: {hosts: ['*'], http: [{route: [{destination: {host: a}}]}]}\n", "spec.hosts[0]", "bound to the mesh"),
    ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec: {hosts: [a.example.com], gateways: [g]}\n", "spec.http", "needs http, tcp or tls"),
    ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec: {hosts: ['*.example.com', a.example.com], gateways: [g], http: [{route: [{destination: {host: a}}]}]}\n",
     "spec.hosts", "duplicate hosts"),
    ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec: {hosts: [a.example.com], gateways: [./g], http: [{route: [{destination: {host: a}}]}]}\n",
     "spec.gateways[0]", "'./' is not accepted here"),
    ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec: {hosts: [a.example.com], http: [{match: [{gateways: [a/B_c]}], route: [{destination: {host: a}}]}]}\n",
     "spec.http[0].match[0].gateways[0]", "is not a Gateway name"),
    ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec: {gateways: [g], http: [{route: [{destination: {host: a}}]}]}\n", "spec.hosts", "a delegate"),
    ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
     "spec: {host: reviews, subsets: [{labels: {version: v1}}]}\n", "spec.subsets[0].name", "CRD's schema"),
    ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
     "spec: {hosts: ['*'], ports: [{number: 443, name: https, protocol: TLS}]}\n", "spec.hosts", "wildcard"),
    ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
     "spec: {hosts: [a.example.com], ports: [{number: 443, protocol: TLS}]}\n", "spec.ports[0].name", "required"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: 9lives}\nspec: {ports: [{port: 80}]}\n", "metadata.name",
     "RFC 1035"),
])
def test_what_a_cluster_refuses_is_manifest_invalid(tmp_path, text, field, needle):
    f = only(state_of(tmp_path, text), "MANIFEST-INVALID")
    assert f"field {field} " in f.message and needle in f.message, f.message
    assert "learner.yaml:" in f.message


@pytest.mark.parametrize("hosts", ['["*"]', '["*.example.com"]', '["./a.example.com"]', '["*/a.example.com"]',
                                   '["prod/a.example.com"]', '["10.0.0.1"]', '["a.example.com."]'])
def test_gateway_hosts_istiod_accepts_are_accepted(tmp_path, hosts):
    state = state_of(tmp_path, _gw_server("{number: 80, name: http, protocol: http}", hosts))
    assert "MANIFEST-INVALID" not in codes(state)


def test_lab1_gateway_without_port_name_and_protocol_is_refused(tmp_path):
    text = docs(_gw_server("{number: 80}"), virtual_service(gateways="g", hosts="bookinfo.example.com"))
    state = state_of(tmp_path, text)
    assert codes(state)[0] == "MANIFEST-INVALID" and not [g for g in state.gateways if g.meta.name == "g"]



def test_match_port_zero_means_no_port_as_in_istiod(tmp_path):
    """validateHTTPRouteMatchRequest checks a match port only when it is not 0
    (pkg/config/validation/virtualservice.go:167); 0 is the unset value."""
    text = rules_vs(f"{{match: [{{uri: {{prefix: /}}, port: 0}}], {TO_PRODUCTPAGE}}}")
    state = state_of(tmp_path, text)
    assert "MANIFEST-INVALID" not in codes(state)
    (vs,) = [v for v in state.virtual_services if v.meta.key == "default/bookinfo"]
    assert vs.http[0].matches[0].port is None


def test_undefined_subset_of_a_service_entry_host_is_503_nc_in_analyze_and_trace(tmp_path):
    from graders.trace import Request, trace

    vs = vs_with_rules("{route: [{destination: {host: httpbin.org, port: {number: 80}, subset: v1}}]}")
    state = state_of(tmp_path, docs(gateway(), HTTPBIN_SERVICE_ENTRY, vs))
    assert only(state, "VS-SUBSET-NOT-FOUND").resources == ("VirtualService default/bookinfo",)
    assert trace(state, Request(port=80, host="x", path="/")).outcome == "no-cluster"
