"""Gateway API request routing through ``trace --gateway NS/<gateway>-istio -o json``.

Cases translate the Gateway API v1.5.1 conformance tests Istio runs (conformance/tests/httproute-matching.go,
httproute-hostname-intersection.go, gateway-http-listener-isolation.go, httproute-invalid-*.go) and Istio
1.30.3's route-precedence.yaml.golden (pilot/pkg/config/kube/gateway/testdata), as our own YAML.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli import trace

GW = "default/gw-istio"
GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
"""
PRECEDENCE = GATEWAY + """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/re.*"}}]
    backendRefs: [{name: details, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /foo}}]
    backendRefs: [{name: ratings, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /foo/bar}}]
    backendRefs: [{name: reviews, port: 9080}]
  - matches: [{path: {type: Exact, value: /foo/bar/baz}}]
    backendRefs: [{name: productpage, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /h}, headers: [{name: version, value: two}]}]
    backendRefs: [{name: reviews, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /h}}]
    backendRefs: [{name: ratings, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /static}}]
    backendRefs: [{name: productpage, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: details, port: 9080}]
  - matches: [{path: {type: RegularExpression, value: "/never.*"}}]
    backendRefs: [{name: productpage, port: 9080}]
"""


def dest(t: dict) -> str | None:
    return t["destination"]["service"] if t["destination"] else None


@pytest.mark.parametrize("path, headers, service", [
    ("/foo/bar/baz", [], "default/productpage"),  # Exact beats prefixes (route-precedence golden)
    ("/foo/bar/x", [], "default/reviews"),  # the longer prefix first
    ("/foo/x", [], "default/ratings"),
    ("/foobar", [], "default/details"),  # PathPrefix is segment-aware: /foo does not match /foobar
    ("/h", ["version:two"], "default/reviews"),  # more header matches first
    ("/h", [], "default/ratings"),
    ("/static/app.js", [], "default/productpage"),
    ("/staticfoo", [], "default/details"),
    ("/re123", [], "default/details"),  # regex ranks below every prefix, but /re123 matches no prefix but /
    ("/never1", [], "default/details"),  # regex after the catch-all PathPrefix / never reaches Envoy
])
def test_precedence(tmp_path: Path, path: str, headers: list[str], service: str) -> None:
    t = trace(tmp_path, PRECEDENCE, gateway=GW, path=path, headers=headers)
    assert (t["outcome"], dest(t)) == ("ok", service), t["steps"]


def test_no_rule_matches_is_404(tmp_path: Path) -> None:
    """httproute-matching.go: a request matching no rule gets 404 (bookinfo: / and /staticfoo)."""
    text = GATEWAY + """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bookinfo, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /productpage}}, {path: {type: PathPrefix, value: /static}}]
    backendRefs: [{name: productpage, port: 9080}]
"""
    assert trace(tmp_path, text, gateway=GW, path="/productpage")["outcome"] == "ok"
    for path in ("/", "/staticfoo"):
        t = trace(tmp_path, text, gateway=GW, path=path)
        assert (t["outcome"], t["http_status"]) == ("not-found", 404)


HOSTS = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: istio
  listeners:
  - {name: specific, port: 80, protocol: HTTP, hostname: very.specific.com}
  - {name: wildcard, port: 80, protocol: HTTP, hostname: "*.wildcard.io"}
  - {name: any, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: specific, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: specific}]
  hostnames: ["*.specific.com"]
  rules: [{backendRefs: [{name: reviews, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wildcard, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: wildcard}]
  rules: [{backendRefs: [{name: ratings, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catchall, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: any}]
  rules: [{backendRefs: [{name: details, port: 9080}]}]
"""


@pytest.mark.parametrize("host, outcome, service", [
    ("very.specific.com:1234", "ok", "default/reviews"),  # httproute-hostname-intersection.go: port ignored
    ("foo.wildcard.io", "ok", "default/ratings"),
    ("other.example", "ok", "default/details"),
    # gateway-http-listener-isolation.go: the catch-all listener's route does not serve a host the
    # more specific listeners claim (conversion.go:1696-1724)
    ("a.b.wildcard.io", "ok", "default/ratings"),
])
def test_hostname_intersection_and_isolation(tmp_path: Path, host: str, outcome: str, service: str) -> None:
    t = trace(tmp_path, HOSTS, gateway=GW, host=host)
    assert (t["outcome"], dest(t)) == (outcome, service), t["steps"]


def test_intersection_narrower_domain_only(tmp_path: Path) -> None:
    """httproute-hostname-intersection.go: listener very.specific.com x route *.specific.com serves only
    very.specific.com; foo.specific.com is no domain of the specific route, so it falls to the '*' listener."""
    t = trace(tmp_path, HOSTS, gateway=GW, host="foo.specific.com")
    assert dest(t) == "default/details"
    no_any = HOSTS.replace("  - {name: any, port: 80, protocol: HTTP}\n", "")
    t = trace(tmp_path, no_any, gateway=GW, host="foo.specific.com")
    assert (t["outcome"], t["http_status"]) == ("not-found", 404)


@pytest.mark.parametrize("backends, outcome, status", [
    ("[{name: nothere, port: 80}]", "backend-invalid", 500),  # httproute-invalid-nonexistent-backendref.go
    ("[{name: productpage, namespace: istio-system, port: 9080}]", "backend-invalid", 500),  # cross-ns, no grant
    ("[{group: x.io, kind: GcsBucket, name: b}]", "backend-invalid", 500),  # unknown kind
    ("[{name: productpage, port: 9080, weight: 0}]", "backend-invalid", 500),  # conversion.go:236-240
    ("[]", "not-found", 404),  # no backendRefs: 404 direct response since 1.30.0 (conversion.go:229-235)
])
def test_backend_outcomes(tmp_path: Path, backends: str, outcome: str, status: int) -> None:
    text = GATEWAY + f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{backendRefs: {backends}}}]
"""
    t = trace(tmp_path, text, gateway=GW)
    assert (t["outcome"], t["http_status"]) == (outcome, status), t["steps"]


def test_merge_order_oldest_route_first(tmp_path: Path) -> None:
    """Same path in two routes: the older route wins (conversion.go:85-95 creationTimestamp, namespace, name)."""
    two = GATEWAY + """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b-new, namespace: default, creationTimestamp: "2026-03-02T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /x}}], backendRefs: [{name: ratings, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a-old, namespace: default, creationTimestamp: "2026-03-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /x}}], backendRefs: [{name: reviews, port: 9080}]}]
"""
    assert dest(trace(tmp_path, two, gateway=GW, path="/x")) == "default/reviews"


def test_route_not_accepted_contributes_nothing(tmp_path: Path) -> None:
    text = GATEWAY + """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: wrong}]
  rules: [{backendRefs: [{name: productpage, port: 9080}]}]
"""
    t = trace(tmp_path, text, gateway=GW)
    assert (t["outcome"], t["http_status"]) == ("not-found", 404)


def test_port_without_listener_is_refused(tmp_path: Path) -> None:
    t = trace(tmp_path, GATEWAY, gateway=GW, port=8080)
    assert t["outcome"] == "connection-refused"


MATCHING = GATEWAY + """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: part1, namespace: default, creationTimestamp: "2026-03-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  hostnames: [example.com, example.net]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}]
    backendRefs: [{name: details, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: part2, namespace: default, creationTimestamp: "2026-03-02T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  hostnames: [example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]
    backendRefs: [{name: ratings, port: 9080}]
"""


@pytest.mark.parametrize("host, path, headers, service", [
    # Gateway API v1.5.1 conformance/tests/httproute-matching-across-routes.go (HTTPRouteMatchingAcrossRoutes):
    # the newer route's /v2 still wins over the older route's catch-all once both are merged and sorted.
    ("example.com", "/", [], "default/details"),
    ("example.com", "/example", [], "default/details"),
    ("example.net", "/example", [], "default/details"),
    ("example.com", "/example", ["Version:one"], "default/details"),
    ("example.com", "/v2", [], "default/ratings"),
    ("example.net", "/v2", [], "default/details"),
    ("example.com", "/v2/example", [], "default/ratings"),
    ("example.com", "/", ["Version:two"], "default/ratings"),
    # httproute-matching.go (HTTPRouteMatching): prefix /v2 is segment-aware
    ("example.com", "/v2example", [], "default/details"),
    ("example.com", "/foo/v2/example", [], "default/details"),
    ("example.com", "/v2/", [], "default/ratings"),
])
def test_matching_across_routes(tmp_path: Path, host: str, path: str, headers: list[str], service: str) -> None:
    t = trace(tmp_path, MATCHING, gateway=GW, host=host, path=path, headers=headers)
    assert (t["outcome"], dest(t)) == ("ok", service), t["steps"]


def test_host_of_no_route_is_404(tmp_path: Path) -> None:
    t = trace(tmp_path, MATCHING, gateway=GW, host="example.org", path="/")
    assert (t["outcome"], t["http_status"]) == ("not-found", 404)


@pytest.mark.parametrize("path, method, query, service", [
    ("/m", "POST", "", "default/ratings"),  # a method match ranks before no method (conversion.go:486-487)
    ("/m", "GET", "", "default/details"),
    ("/q", "GET", "?a=1", "default/reviews"),  # more query matches first (conversion.go:493-494)
    ("/q", "GET", "?a=2", "default/details"),
])
def test_method_and_query_precedence(tmp_path: Path, path: str, method: str, query: str, service: str) -> None:
    text = GATEWAY + """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: details, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /}, method: POST}]
    backendRefs: [{name: ratings, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /}, queryParams: [{name: a, value: "1"}]}]
    backendRefs: [{name: reviews, port: 9080}]
"""
    t = trace(tmp_path, text, gateway=GW, path=path + query, method=method)
    assert (t["outcome"], dest(t)) == ("ok", service), t["steps"]


def _isolation() -> str:
    listeners = [("empty-hostname", None, "details"), ("wildcard-example-com", "*.example.com", "ratings"),
                 ("wildcard-foo-example-com", "*.foo.example.com", "reviews"),
                 ("abc-foo-example-com", "abc.foo.example.com", "productpage")]
    text = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: istio
  listeners:
"""
    for name, hostname, _ in listeners:
        host = f", hostname: '{hostname}'" if hostname else ""
        text += f"  - {{name: {name}, port: 80, protocol: HTTP{host}, allowedRoutes: {{namespaces: {{from: All}}}}}}\n"
    for name, _, backend in listeners:
        text += f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: attaches-to-{name}, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: {name}}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /{name}}}}}]
    backendRefs: [{{name: {backend}, port: 9080}}]
"""
    return text


ISOLATION_PATHS = {"/empty-hostname": "default/details", "/wildcard-example-com": "default/ratings",
                   "/wildcard-foo-example-com": "default/reviews", "/abc-foo-example-com": "default/productpage"}


@pytest.mark.parametrize("host, served", [
    # Gateway API v1.5.1 conformance/tests/gateway-http-listener-isolation.go (GatewayHTTPListenerIsolation):
    # each host reaches only the route of its most specific listener; every other path is 404.
    ("bar.com", "/empty-hostname"),
    ("bar.example.com", "/wildcard-example-com"),
    ("bar.foo.example.com", "/wildcard-foo-example-com"),
    ("abc.foo.example.com", "/abc-foo-example-com"),
])
def test_listener_isolation(tmp_path: Path, host: str, served: str) -> None:
    text = _isolation()
    for path, service in ISOLATION_PATHS.items():
        t = trace(tmp_path, text, gateway=GW, host=host, path=path)
        expected = ("ok", service) if path == served else ("not-found", None)
        assert (t["outcome"], dest(t)) == expected, (host, path, t["steps"])
