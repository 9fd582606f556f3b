"""The request trace: every outcome, the objects that decide each step, and Istio's merge order."""

from __future__ import annotations

import json

import pytest
import yaml
from engine_helpers import (
    codes,
    course_operator,
    docs,
    gateway,
    only,
    productpage_deployment,
    productpage_in,
    route_to,
    rule_in_test_namespace,
    state_of,
    virtual_service,
    vs_with_rules,
    write,
)

from graders.cli import main
from graders.trace import OUTCOMES, Request, trace

BOOKINFO = docs(gateway(), virtual_service())


def run(tmp_path, text: str, **req) -> object:
    return trace(state_of(tmp_path, text), Request(**req))


def steps(t) -> list[str]:
    return [s.step for s in t.steps]


def test_routed_request_reaches_productpage(tmp_path):
    t = run(tmp_path, BOOKINFO, path="/productpage")
    assert (t.outcome, t.http_status) == ("ok", None)
    assert t.destination == {"service": "default/productpage", "port": 9080}
    assert steps(t) == ["gateway-service", "reachability", "target-port", "listener", "virtual-host", "route",
                        "destination", "endpoints"]
    listener = next(s for s in t.steps if s.step == "listener")
    assert "8080" in listener.result and listener.objects == ("Gateway default/bookinfo-gateway",)


def test_gateway_port_80_translates_to_the_same_listener(tmp_path):
    t = run(tmp_path, docs(gateway(port=80), virtual_service()), path="/productpage")
    assert t.outcome == "ok"
    assert "Service port 80 -> targetPort 8080" in next(s for s in t.steps if s.step == "listener").result


def test_unrouted_path_is_a_gateway_404(tmp_path):
    t = run(tmp_path, BOOKINFO, path="/")
    assert (t.outcome, t.http_status, t.destination) == ("not-found", 404, None)
    assert "No route matches GET /" in t.steps[-1].result


def test_egress_gateway_is_unreachable_from_outside(tmp_path):
    t = run(tmp_path, docs(gateway(selector="egressgateway", port=80), virtual_service()),
            gateway="istio-system/istio-egressgateway", path="/productpage")
    assert t.outcome == "unreachable" and t.http_status is None
    assert t.steps[-1].objects == ("Service istio-system/istio-egressgateway",)


def test_missing_gateway_service_is_unreachable(tmp_path):
    assert run(tmp_path, BOOKINFO, gateway="istio-system/nope").outcome == "unreachable"


def test_port_not_on_service_is_refused(tmp_path):
    t = run(tmp_path, docs(gateway(port=7070), virtual_service()), port=7070)
    assert t.outcome == "connection-refused" and t.steps[-1].step == "service-port"


def test_no_gateway_means_no_listener(tmp_path):
    t = run(tmp_path, virtual_service(), path="/productpage")
    assert t.outcome == "connection-refused" and "no listener" in t.steps[-1].result


def test_gateway_on_7070_opens_a_listener_the_service_never_reaches(tmp_path):
    t = run(tmp_path, docs(gateway(port=7070), virtual_service()), path="/productpage")
    assert t.outcome == "connection-refused"
    assert "listeners they do open: 7070" in t.steps[-1].result


def test_privileged_listener_is_skipped(tmp_path):
    iop = course_operator("          - {name: http-81, port: 81, targetPort: 81, nodePort: 30082}")
    t = run(tmp_path, docs(iop, gateway(port=81), virtual_service()), port=81, path="/productpage")
    assert t.outcome == "connection-refused"
    assert any("unprivileged pod: istiod skips it" in s.result for s in t.steps)


def test_selector_mismatch_leaves_the_gateway_without_listener(tmp_path):
    t = run(tmp_path, docs(gateway(selector="ingress"), virtual_service()), path="/productpage")
    assert t.outcome == "connection-refused" and "Gateways selecting it: none" in t.steps[-1].result


def test_gateway_without_virtualservice_is_blackhole_404(tmp_path):
    t = run(tmp_path, gateway(), path="/productpage")
    assert t.outcome == "not-found" and "blackhole" in t.steps[-1].result


def test_virtualservice_in_other_namespace_with_short_ref_is_not_bound(tmp_path):
    t = run(tmp_path, docs(gateway(), virtual_service(ns="test")), path="/productpage")
    assert t.outcome == "not-found" and t.steps[-1].step == "virtual-host"


def test_host_header_mismatch_is_404(tmp_path):
    text = docs(gateway(hosts='"bookinfo.example.com"'), virtual_service(hosts='"bookinfo.example.com"'))
    assert run(tmp_path, text, path="/productpage").outcome == "not-found"
    ok = run(tmp_path, text, path="/productpage", host="bookinfo.example.com:8080")
    assert ok.outcome == "ok"


def test_unknown_destination_host_is_503_nc(tmp_path):
    t = run(tmp_path, docs(gateway(), virtual_service(dest="productpage.default")), path="/productpage")
    assert (t.outcome, t.http_status) == ("no-cluster", 503)
    assert "outbound|9080||productpage.default" in t.steps[-1].result


def test_wrong_destination_port_is_503_nc(tmp_path):
    t = run(tmp_path, docs(gateway(), virtual_service(port=8080)), path="/productpage")
    assert (t.outcome, t.http_status) == ("no-cluster", 503)
    assert "outbound|8080||productpage.default.svc.cluster.local" in t.steps[-1].result


def test_undefined_subset_is_503_nc(tmp_path):
    vs = virtual_service().replace("host: productpage", "host: productpage\n        subset: v1")
    t = run(tmp_path, docs(gateway(), vs), path="/productpage")
    assert t.outcome == "no-cluster" and "Subset 'v1'" in t.steps[-1].result


def test_subset_with_no_pods_is_503_uh(tmp_path):
    dr = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  subsets:
  - {name: v9, labels: {version: v9}}
"""
    vs = virtual_service().replace("host: productpage", "host: productpage\n        subset: v9")
    t = run(tmp_path, docs(gateway(), vs, dr), path="/productpage")
    assert (t.outcome, t.http_status) == ("no-healthy-upstream", 503)
    assert t.destination == {"service": "default/productpage", "port": 9080}


def test_scaled_to_zero_is_503_uh(tmp_path):
    dep = productpage_deployment(0)
    t = run(tmp_path, docs(dep, gateway(), virtual_service()), path="/productpage")
    assert t.outcome == "no-healthy-upstream" and "no healthy upstream" in t.steps[-1].result


def test_https_listener_closes_a_plain_http_request(tmp_path):
    t = run(tmp_path, gateway(port=443, hosts='"shop.example.com"', protocol="HTTPS"), port=443)
    assert t.outcome == "connection-closed" and t.http_status is None


def test_older_gateway_wins_the_shared_path(tmp_path):
    text = docs(productpage_in("test"), gateway(ns="test", created="2026-03-01T10:00:00Z"),
                virtual_service(ns="test", gateways="test/bookinfo-gateway"),
                gateway(created="2026-03-02T10:00:00Z"), virtual_service())
    t = run(tmp_path, text, path="/productpage")
    assert t.destination == {"service": "test/productpage", "port": 9080}
    assert any(s.step == "route-order" and s.uncertain for s in t.steps)


def test_catch_all_route_moves_last_and_flips_the_winner(tmp_path):
    catch_all = rule_in_test_namespace("""  - route:
    - destination: {host: productpage, port: {number: 9080}}
""")
    text = docs(productpage_in("test"), gateway(ns="test", created="2026-03-01T10:00:00Z"), catch_all,
                gateway(created="2026-03-02T10:00:00Z"), virtual_service())
    t = run(tmp_path, text, path="/productpage")
    assert t.destination == {"service": "default/productpage", "port": 9080}
    assert run(tmp_path, text, path="/anything").destination == {"service": "test/productpage", "port": 9080}


def test_only_the_catch_all_match_of_a_rule_moves_last(tmp_path):
    # istiod emits one Envoy route per match: test's /productpage match keeps its place (older Gateway,
    # so it wins), while the same rule's prefix / match is moved after default's routes.
    rule = rule_in_test_namespace("""  - match: [{uri: {prefix: /productpage}}, {uri: {prefix: /}}]
    route:
    - destination: {host: productpage, port: {number: 9080}}
""")
    text = docs(productpage_in("test"), gateway(ns="test", created="2026-03-01T10:00:00Z"), rule,
                gateway(created="2026-03-02T10:00:00Z"), virtual_service())
    assert run(tmp_path, text, path="/productpage").destination["service"] == "test/productpage"
    assert run(tmp_path, text, path="/login").destination["service"] == "default/productpage"
    assert run(tmp_path, text, path="/other").destination["service"] == "test/productpage"


@pytest.mark.parametrize(("uri", "catch_all"), [("{prefix: /}", True), ("{regex: '.*'}", True),
                                                ("{regex: '/.*'}", False), ("{prefix: /api}", False)])
def test_catch_all_rule_matches_istio(uri, catch_all):
    assert parsed_rule(f"{{uri: {uri}}}").catch_all is catch_all


def parsed_rule(match: str):
    """The first HTTP rule of a VirtualService whose only rule has this one match."""
    from graders.objects import RawObject, parse_virtual_service

    vs = yaml.safe_load(f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: v}}
spec:
  hosts: ["*"]
  http:
  - match: [{match}]
    route: [{{destination: {{host: productpage}}}}]
""")
    return parse_virtual_service(RawObject(vs, "t", 0)).http[0]


def test_host_headers_separate_two_namespaces(tmp_path):
    text = docs(productpage_in("test"), gateway(hosts='"bookinfo.default.example"'),
                virtual_service(hosts='"bookinfo.default.example"'),
                gateway(ns="test", hosts='"bookinfo.test.example"'),
                virtual_service(ns="test", gateways="test/bookinfo-gateway", hosts='"bookinfo.test.example"'))
    for ns in ("default", "test"):
        t = run(tmp_path, text, path="/productpage", host=f"bookinfo.{ns}.example")
        assert t.destination == {"service": f"{ns}/productpage", "port": 9080}


def test_match_on_method_and_header(tmp_path):
    vs = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - uri: {prefix: /api}
      method: {exact: POST}
      headers: {x-canary: {exact: "yes"}}
    route:
    - destination: {host: reviews, port: {number: 9080}}
  - match:
    - uri: {prefix: /api}
    route:
    - destination: {host: ratings, port: {number: 9080}}
"""
    text = docs(gateway(), vs)
    assert run(tmp_path, text, path="/api/x", method="POST", headers={"X-Canary": "yes"}).destination["service"] \
        == "default/reviews"
    assert run(tmp_path, text, path="/api/x", method="GET", headers={"x-canary": "yes"}).destination["service"] \
        == "default/ratings"


def two_rules(first_match: str) -> str:
    """bookinfo: http[0] (the given match) -> reviews, then http[1] (prefix /api) -> ratings."""
    return docs(gateway(), vs_with_rules(f"{{match: [{first_match}], {route_to('reviews')}}}",
                                         f"{{match: [{{uri: {{prefix: /api}}}}], {route_to('ratings')}}}"))


def service_for(tmp_path, text: str, **req) -> str:
    t = run(tmp_path, text, **req)
    return t.destination["service"] if t.destination else t.outcome


@pytest.mark.parametrize(("match", "request_", "service"), [
    # queryParams: Envoy compares the first value of the parameter, not percent-decoded; {} = present
    ("{uri: {prefix: /api}, queryParams: {u: {exact: normal}}}", {"path": "/api/x?u=normal"}, "default/reviews"),
    ("{uri: {prefix: /api}, queryParams: {u: {exact: normal}}}", {"path": "/api/x?u=test"}, "default/ratings"),
    ("{uri: {prefix: /api}, queryParams: {u: {exact: normal}}}", {"path": "/api/x?v=1&u=normal&u=x"},
     "default/reviews"),
    ("{uri: {prefix: /api}, queryParams: {debug: {}}}", {"path": "/api/x?debug"}, "default/reviews"),
    ("{uri: {prefix: /api}, queryParams: {debug: {}}}", {"path": "/api/x"}, "default/ratings"),
    ("{uri: {prefix: /api}, queryParams: {id: {regex: '[0-9]+'}}}", {"path": "/api/x?id=42"}, "default/reviews"),
    ("{uri: {prefix: /api}, queryParams: {id: {regex: '[0-9]+'}}}", {"path": "/api/x?id=4a"}, "default/ratings"),
    # headers: {} tests presence; withoutHeaders inverts (a missing header counts as "")
    ("{uri: {prefix: /api}, headers: {x-canary: {}}}", {"path": "/api/x", "headers": {"X-Canary": ""}},
     "default/reviews"),
    ("{uri: {prefix: /api}, headers: {x-canary: {}}}", {"path": "/api/x"}, "default/ratings"),
    ("{uri: {prefix: /api}, withoutHeaders: {x-canary: {}}}", {"path": "/api/x"}, "default/reviews"),
    ("{uri: {prefix: /api}, withoutHeaders: {x-canary: {}}}", {"path": "/api/x", "headers": {"x-canary": "1"}},
     "default/ratings"),
    ("{uri: {prefix: /api}, withoutHeaders: {x-canary: {exact: 'yes'}}}", {"path": "/api/x"}, "default/reviews"),
    ("{uri: {prefix: /api}, withoutHeaders: {x-canary: {exact: 'yes'}}}",
     {"path": "/api/x", "headers": {"x-canary": "yes"}}, "default/ratings"),
    # scheme: a plain HTTP request's :scheme is http
    ("{uri: {prefix: /api}, scheme: {exact: http}}", {"path": "/api/x"}, "default/reviews"),
    ("{uri: {prefix: /api}, scheme: {exact: https}}", {"path": "/api/x"}, "default/ratings"),
    # ignoreUriCase: exact and prefix only
    ("{uri: {prefix: /API/v1}, ignoreUriCase: true}", {"path": "/api/V1/products"}, "default/reviews"),
    ("{uri: {prefix: /API/v1}}", {"path": "/api/V1/products"}, "default/ratings"),
    ("{uri: {regex: '/API/.*'}, ignoreUriCase: true}", {"path": "/api/x"}, "default/ratings"),
])
def test_every_match_field_is_modelled(tmp_path, match, request_, service):
    assert service_for(tmp_path, two_rules(match), **request_) == service


def test_source_labels_are_compared_with_the_gateway_pods(tmp_path):
    # Without match.gateways, istiod builds the route for a gateway only if sourceLabels are labels of
    # the gateway proxy itself (and sourceNamespace its namespace).
    kept = two_rules("{uri: {prefix: /api}, sourceLabels: {istio: ingressgateway}}")
    assert service_for(tmp_path, kept, path="/api/x") == "default/reviews"
    dropped = two_rules("{uri: {prefix: /api}, sourceLabels: {app: productpage}}")
    t = run(tmp_path, dropped, path="/api/x")
    assert t.destination["service"] == "default/ratings"
    note = next(s for s in t.steps if s.step == "routes")
    assert "a match of http[0] is left out: its sourceLabels app=productpage are not labels of the gateway pod " \
           "istio-system/istio-ingressgateway-" in note.result
    other_ns = two_rules("{uri: {prefix: /api}, sourceNamespace: default}")
    assert service_for(tmp_path, other_ns, path="/api/x") == "default/ratings"
    named = two_rules("{uri: {prefix: /api}, sourceLabels: {app: productpage}, gateways: [bookinfo-gateway]}")
    assert service_for(tmp_path, named, path="/api/x") == "default/reviews"  # match.gateways: labels ignored


def test_rules_after_a_catch_all_rule_of_the_same_virtual_service_are_never_built(tmp_path):
    # istiod stops building a VirtualService's routes at its first catch-all; moving catch-alls last
    # (across VirtualServices) does not bring the later rules back.
    text = two_rules("{uri: {prefix: /}}")
    t = run(tmp_path, text, path="/api/x")
    assert t.destination["service"] == "default/reviews"
    note = next(s for s in t.steps if s.step == "routes")
    assert "http[1] comes after the catch-all http[0] and is left out" in note.result


def test_empty_and_null_match_conditions(tmp_path):
    from graders.objects import Invalid

    parse = parsed_rule
    assert parse("{headers: {x-a: {}}}").matches[0].headers[0][1].kind == "present"
    assert parse("{uri: {}}").catch_all  # istiod keeps Envoy's default prefix /
    assert not parse("{queryParams: {a: {exact: b}}}").catch_all
    assert not parse("{withoutHeaders: {x-a: {}}}").catch_all
    assert parse("{withoutHeaders: {x-a: {regex: '*'}}}").matches[0].without_headers[0][1].kind == "present"
    assert parse("{sourceLabels: {app: x}}").catch_all  # source fields only decide whether the route exists
    with pytest.raises(Invalid, match=r"headers\.x-a: cannot be null"):
        parse("{headers: {x-a: null}}")
    with pytest.raises(Invalid, match=r"headers\.1: names must be strings"):
        parse("{headers: {1: {exact: a}}}")


def redirecting_gateway(hosts: str, name: str = "redirect", created: str = "2026-01-01T00:00:00Z") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default, creationTimestamp: '{created}'}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 8080, name: http, protocol: HTTP}}
    hosts: [{hosts}]
    tls: {{httpsRedirect: true}}
"""


def test_https_redirect_is_per_virtual_host(tmp_path):
    # istiod marks require_tls on the virtual hosts of the redirecting server only: another Gateway's
    # host on the same port is still served over plain HTTP.
    text = docs(redirecting_gateway('"secure.example.com"'),
                gateway(hosts='"shop.example.com"', created="2026-02-01T00:00:00Z"),
                virtual_service(hosts='"shop.example.com"'))
    t = run(tmp_path, text, host="secure.example.com", path="/login")
    assert (t.outcome, t.http_status) == ("ok", 301)
    assert "301 to https://secure.example.com/login" in t.steps[-1].result
    assert t.steps[-1].objects == ("Gateway default/redirect",)
    shop = run(tmp_path, text, host="shop.example.com", path="/productpage")
    assert (shop.outcome, shop.destination["service"]) == ("ok", "default/productpage")


def test_https_redirect_without_any_virtual_service_still_redirects(tmp_path):
    t = run(tmp_path, docs(redirecting_gateway('"*"')), host="anything.example.com", path="/")
    assert (t.outcome, t.http_status) == ("ok", 301)


def test_https_redirect_covers_the_virtual_services_bound_to_that_server(tmp_path):
    text = docs(redirecting_gateway('"*"', name="bookinfo-gateway"), virtual_service(hosts='"bookinfo.example.com"'))
    t = run(tmp_path, text, host="bookinfo.example.com", path="/productpage")
    assert (t.outcome, t.http_status, t.destination) == ("ok", 301, None)


def test_outcome_list_is_covered():
    # The outcomes this file exercises; a new outcome must get a test here.
    # backend-invalid (Gateway API only) is exercised in tests/conformance/test_gwapi_routing.py (h10-gwapi).
    assert set(OUTCOMES) == {"ok", "unreachable", "connection-refused", "not-found", "no-healthy-upstream",
                             "no-cluster", "connection-closed", "backend-invalid",
                             "tls-handshake-failed"}  # h9-tls: exercised in tests/test_trace_tls.py


def test_trace_cli_json_contract(tmp_path, capsys):
    path = write(tmp_path, "b.yaml", BOOKINFO)
    assert main(["trace", path, "--path", "/productpage", "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "ok" and out["http_status"] is None
    assert out["destination"] == {"service": "default/productpage", "port": 9080}
    assert all(set(s) >= {"step", "result", "objects"} for s in out["steps"])


@pytest.mark.parametrize(("args", "needle"), [
    (["--gateway", "istio-ingressgateway"], "NAMESPACE/SERVICE"),
    (["--path", "productpage"], "starts with '/'"),
    (["--port", "70000"], "not a port number"),
])
def test_trace_cli_bad_arguments(tmp_path, capsys, args, needle):
    assert main(["trace", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


# --- issue #10: the trace and analyze agree with istiod (each test failed before the fix) -----------------
def _finding_codes(tmp_path, text: str) -> list[str]:
    return codes(state_of(tmp_path, text))


def test_issue10_item2_service_exported_only_to_its_namespace_is_503_nc_at_the_gateway(tmp_path):
    """A Service exported to "." in default is not in the istio-system gateway's sidecar scope
    (DefaultSidecarScopeForGateway, sidecar.go:257; IsServiceVisible, push_context.go:1089)."""
    svc = """
apiVersion: v1
kind: Service
metadata:
  name: productpage
  namespace: default
  annotations: {networking.istio.io/exportTo: "."}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080}]
"""
    text = docs(svc, gateway(), virtual_service())
    t = run(tmp_path, text, path="/productpage")
    assert (t.outcome, t.http_status) == ("no-cluster", 503)
    assert "not to the gateway pod's namespace istio-system" in t.steps[-1].result
    f = only(state_of(tmp_path, text), "VS-DESTINATION-NOT-EXPORTED")
    assert "Service default/productpage" in f.resources and "istio-system" in f.message
    exported = text.replace('exportTo: "."', 'exportTo: "., istio-system"')
    assert run(tmp_path, exported, path="/productpage").outcome == "ok"
    assert "VS-DESTINATION-NOT-EXPORTED" not in _finding_codes(tmp_path, exported)


def test_issue10_item2_service_entry_exported_elsewhere_is_503_nc(tmp_path):
    se = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: test}
spec:
  hosts: [httpbin.org]
  exportTo: ["."]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
"""
    text = docs(se, gateway(), vs_with_rules("{route: [{destination: {host: httpbin.org, port: {number: 80}}}]}"))
    assert run(tmp_path, text).outcome == "no-cluster"
    assert "ServiceEntry test/httpbin" in only(state_of(tmp_path, text), "VS-DESTINATION-NOT-EXPORTED").resources


@pytest.mark.parametrize(("code", "status"), [(None, 301), (302, 302), (303, 303), (307, 307), (308, 308)])
def test_issue10_item5_redirect_code_is_honoured(tmp_path, code, status):
    """ApplyRedirect maps redirectCode 301/302/303/307/308 (route/route.go:831-841); 0 means 301."""
    rc = f", redirectCode: {code}" if code else ""
    text = docs(gateway(), vs_with_rules(f"{{redirect: {{uri: /new{rc}}}}}"))
    assert (run(tmp_path, text).outcome, run(tmp_path, text).http_status) == ("ok", status)


def test_issue10_item6_gateway_and_virtualservice_hosts_are_compared_case_sensitively(tmp_path):
    """host.Names.Intersection is exact-string (pkg/config/host/names.go:83, name.go:64); istiod lower-cases
    only the resulting domain (gateway.go:489)."""
    text = docs(gateway(hosts='"foo.com"'), virtual_service(hosts='"Foo.com"'))
    assert run(tmp_path, text, host="foo.com", path="/productpage").outcome == "not-found"
    assert "VS-HOST-NOT-IN-GATEWAY" in _finding_codes(tmp_path, text)
    star = docs(gateway(), virtual_service(hosts='"Foo.com"'))
    assert run(tmp_path, star, host="foo.com", path="/productpage").outcome == "ok"


def test_issue10_item7_short_virtualservice_hosts_expand_to_the_fqdn(tmp_path):
    """ResolveVirtualServiceShortnames (pilot/pkg/model/virtualservice.go:128) expands hosts: [productpage]."""
    text = docs(gateway(), virtual_service(hosts="productpage"))
    assert run(tmp_path, text, host="productpage", path="/productpage").outcome == "not-found"
    fqdn = run(tmp_path, text, host="productpage.default.svc.cluster.local", path="/productpage")
    assert fqdn.outcome == "ok"
    assert "'productpage.default.svc.cluster.local'" in next(s for s in fqdn.steps if s.step == "virtual-host").result


TCP_GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default, creationTimestamp: '{ts}'}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 8080, name: tcp, protocol: TCP}}
    hosts: ["{host}"]
"""
TCP_ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-route, namespace: default}
spec:
  hosts: ["*"]
  gateways: [tcp-a]
  tcp:
  - route: [{destination: {host: productpage, port: {number: 9080}}}]
"""


def test_issue10_item8_tcp_server_without_tcp_route_has_no_listener(tmp_path):
    """No tcp route: no filter chain (gateway.go:805-843), and a listener without filter chains is omitted
    (gateway.go:81, 217): connection refused, not connection-closed."""
    text = TCP_GATEWAY.format(name="tcp-a", ts="2026-01-01T00:00:00Z", host="*")
    t = run(tmp_path, text, port=80)
    assert t.outcome == "connection-refused" and "no filter chain" in t.steps[-1].result
    routed = run(tmp_path, docs(text, TCP_ROUTE), port=80)
    assert routed.outcome == "ok" and routed.destination == {"service": "default/productpage", "port": 9080}


def test_issue10_item8_second_tcp_server_on_a_port_is_dropped_whatever_its_hosts(tmp_path):
    """canMergeProtocols(TCP, TCP) is false (pilot/pkg/model/gateway.go:513): the newer server is skipped with
    'conflict with existing server' (:298), although the hosts differ."""
    text = docs(TCP_GATEWAY.format(name="tcp-a", ts="2026-01-01T00:00:00Z", host="a.example.com"),
                TCP_GATEWAY.format(name="tcp-b", ts="2026-01-02T00:00:00Z", host="b.example.com"), TCP_ROUTE)
    f = only(state_of(tmp_path, text), "GW-CONFLICT")
    assert f.severity == "error" and f.details["winner"] == "default/tcp-a" and f.details["loser"] == "default/tcp-b"
    assert "whatever its hosts" in f.message and "duplicate host names" not in f.message
    t = run(tmp_path, text, port=80)
    assert t.outcome == "ok" and any("tcp-b" in s.result and "rejects" in s.result for s in t.steps)


MULTI_PORT_WEB = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 80, targetPort: 9080}, {name: admin, port: 9090}]
"""


@pytest.mark.parametrize(("gw_port", "request_port", "outcome", "finding"), [
    (80, 80, "ok", False),  # the server's port 80 is a port of web: cluster outbound|80||web exists
    (8080, 80, "no-cluster", True),  # declared 8080 (translated to the same listener), web has no 8080
])
def test_issue10_item9_omitted_port_falls_back_to_the_gateway_server_port(tmp_path, gw_port, request_port, outcome,
                                                                          finding):
    """GetDestinationCluster (route/route.go:362-368): no port and several Service ports -> the declared port
    of the Gateway server; analyze and trace agree."""
    vs = vs_with_rules("{route: [{destination: {host: web}}]}")
    text = docs(MULTI_PORT_WEB, gateway(port=gw_port), vs)
    t = run(tmp_path, text, port=request_port)
    assert t.outcome == outcome
    if outcome == "ok":
        assert t.destination == {"service": "default/web", "port": 80}
    assert ("VS-DESTINATION-PORT-MISMATCH" in _finding_codes(tmp_path, text)) is finding


def test_issue10_item12_https_redirect_host_with_any_namespace_prefix_redirects(tmp_path):
    """sanitizeServerHostNamespace turns */example.org into example.org (pilot/pkg/model/gateway.go:654) before
    the redirect virtual hosts are built (gateway.go:527-542)."""
    text = redirecting_gateway('"*/example.org"', name="bookinfo-gateway")
    t = run(tmp_path, text, host="example.org")
    assert (t.outcome, t.http_status) == ("ok", 301)
    assert run(tmp_path, redirecting_gateway('"test/example.org"', name="bookinfo-gateway"),
               host="example.org").outcome == "not-found"


def test_issue10_item12_virtualservice_exported_to_the_gateway_namespace_comes_before_public_ones(tmp_path):
    """VirtualServicesForGateway (push_context.go:1113): private, then exported to the proxy's namespace, then
    public, whatever the creation times."""
    old_public = virtual_service(name="public", created="2020-01-01T00:00:00Z", dest="reviews")
    new_exported = virtual_service(name="exported", created="2026-01-01T00:00:00Z").replace(
        "spec:\n", "spec:\n  exportTo: [istio-system]\n", 1)
    t = run(tmp_path, docs(gateway(), old_public, new_exported), path="/productpage")
    assert t.destination == {"service": "default/productpage", "port": 9080}


@pytest.mark.parametrize(("path", "outcome", "status"), [("/productpage", "not-found", 404),
                                                        ("/healthz/ready", "ok", 200)])
def test_issue10_item14_gateway_on_the_status_port_meets_the_bootstrap_listener(tmp_path, path, outcome, status):
    """The bootstrap's static listener 0.0.0.0_15021 (route /healthz/ready only) keeps the port; istiod's
    reserved-port check (model/context.go:851) is for sidecars only."""
    text = docs(gateway(port=15021), virtual_service())
    t = run(tmp_path, text, port=15021, path=path)
    assert (t.outcome, t.http_status) == (outcome, status)
    assert any("reserved" in s.result for s in t.steps if s.step == "listener")
    f = only(state_of(tmp_path, text), "GW-PORT-RESERVED")
    assert f.severity == "error" and "Gateway default/bookinfo-gateway" in f.resources


def test_tcp_server_without_route_beside_tls_servers_leaves_only_their_filter_chains(tmp_path):
    """An HTTPS server first, then a TCP server without a tcp route on the same port: the TLS filter chain
    keeps the listener alive (gateway.go:201-206 appends the chains of each server port), the TCP server adds none,
    so a plain request matches no chain and is closed rather than refused."""
    https = gateway(port=443, protocol="HTTPS", created="2026-01-01T00:00:00Z", hosts='"a.example.com"')
    tcp = TCP_GATEWAY.format(name="tcp-a", ts="2026-01-02T00:00:00Z", host="b.example.com").replace("8080", "443")
    t = run(tmp_path, docs(https, tcp), port=443)
    assert t.outcome == "connection-closed" and "keeps only its TLS filter chains" in t.steps[-1].result
