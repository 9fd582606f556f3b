"""Conformance: how istiod turns VirtualService rules into Envoy routes, translated from Istio 1.30.3.

Sources (each case id names the test, file and line):
- TestBuildHTTPRoutes: pilot/pkg/networking/core/route/route_test.go
- TestSortVHostRoutes: route/route_test.go:3245
- TestIsCatchAllRoute: route/route_internal_test.go:41

Istio's tests inspect the Envoy routes BuildHTTPRoutesForVirtualService returns (how many, in which
order, with which matchers); each case here sends a request through the lab gateway and states what
that route table does with it: which Service answers, or the gateway's own 404 / redirect / status.
"""

from __future__ import annotations

from typing import Any

import pytest
from cli import trace
from networking import app, dest, exact, gateway, outcome, prefix, rule, server, stream, virtual_service

RT = "route/route_test.go"
RIT = "route/route_internal_test.go"
GW = gateway("gateway", server(80, "*"))
APPS = [*app("a"), *app("b"), *app("c"), *app("d")]
A, B, C, D = ("ok", None, "default/a"), ("ok", None, "default/b"), ("ok", None, "default/c"), ("ok", None, "default/d")
NOT_FOUND = ("not-found", 404, None)


def one_vs(*rules: dict[str, Any]) -> str:
    return stream(APPS, GW, virtual_service("acme", ["*"], ["gateway"], list(rules)))


def two_vs(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> str:
    """An older VirtualService ``first`` and a newer ``second`` on the same host: one virtual host, the
    older one's routes first, then SortVHostRoutes moves catch-alls last (route.go:1621)."""
    return stream(APPS, GW, virtual_service("first", ["*"], ["gateway"], first, created=1),
                  virtual_service("second", ["*"], ["gateway"], second, created=2))


def header(name: str, match: dict[str, str]) -> dict[str, Any]:
    return {"headers": {name: match}}


CASES: list[tuple[str, str, dict[str, Any], tuple[str, int | None, str | None]]] = [
    # --- TestBuildHTTPRoutes ------------------------------------------------------------------------
    *[(f"TestBuildHTTPRoutes {RT}:200 catch all route: both matches become routes, the catch-all sorted last, {p}",
       two_vs([rule(dest("a"), match=[prefix("/route/v1"), prefix("/")])], [rule(dest("b"), match=[prefix("/other")])]),
       {"path": p}, want) for p, want in [("/route/v1/x", A), ("/other", B), ("/else", A)]],
    (f"TestBuildHTTPRoutes {RT}:213 catch all route with port match: a match on the server's port is a catch-all, "
     "later rules are not built",
     one_vs(rule(dest("a"), match=[{"port": 80}]), rule(dest("b"), match=[header("cookie", {"exact": "canary"})]),
            rule(dest("c"))),
     {"headers": ["cookie:canary"]}, A),
    *[(f"TestBuildHTTPRoutes {RT}:287 multi prefix catch all route: the catch-all match with sourceLabels the gateway "
       f"lacks is not built, {p}",
       one_vs(rule(dest("a"), match=[prefix("/", sourceLabels={"matchingNoSrc": "xxx"}), prefix("/a")])),
       {"path": p}, want) for p, want in [("/a", A), ("/b", NOT_FOUND)]],
    *[(f"TestBuildHTTPRoutes {RT}:345 regex matching on header, {value!r}",
       one_vs(rule(dest("a"), match=[header("authorization", {"regex": r"Bearer .+?\..+?\..+?"})])),
       {"headers": [f"Authorization:{value}"]}, want)
      for value, want in [("Bearer x.y.z", A), ("Basic xyz", NOT_FOUND)]],
    *[(f"TestBuildHTTPRoutes {RT}:357 regex matching on without_header (inverted, missing header treated as empty), "
       f"{hdrs}", one_vs(rule(dest("a"), match=[{"withoutHeaders": {"foo-header": {"regex": r"BAR .+?\..+?\..+?"}}}])),
       {"headers": hdrs}, want) for hdrs, want in [([], A), (["FOO-HEADER:BAR x.y.z"], NOT_FOUND),
                                                  (["FOO-HEADER:other"], A)]],
    *[(f"TestBuildHTTPRoutes {RT}:371 presence matching on header, {hdrs}",
       one_vs(rule(dest("a"), match=[header("FOO-HEADER", {})])), {"headers": hdrs}, want)
      for hdrs, want in [(["foo-header:anything"], A), ([], NOT_FOUND)]],
    *[(f"TestBuildHTTPRoutes {RT}:394 presence matching on without_header, {hdrs}",
       one_vs(rule(dest("a"), match=[{"withoutHeaders": {"FOO-HEADER": {}}}])), {"headers": hdrs}, want)
      for hdrs, want in [([], A), (["foo-header:x"], NOT_FOUND)]],
    *[(f"TestBuildHTTPRoutes {RT}:408 regex '*' on a header is a presence match, {hdrs}",
       one_vs(rule(dest("a"), match=[header("FOO-HEADER", {"regex": "*"})])), {"headers": hdrs}, want)
      for hdrs, want in [(["foo-header:anything at all"], A), ([], NOT_FOUND)]],
    *[(f"TestBuildHTTPRoutes {RT}:{line} {kind} matching on query parameter, {query}",
       one_vs(rule(dest("a"), match=[{"queryParams": {"token": {kind: value}}}])), {"path": f"/?{query}"}, want)
      for line, kind, value, query, want in [
          (426, "exact", "foo", "token=foo", A), (426, "exact", "foo", "token=foox", NOT_FOUND),
          (438, "prefix", "foo-", "token=foo-1", A), (438, "prefix", "foo-", "token=bar", NOT_FOUND),
          (450, "regex", r"BAR .+?\..+?\..+?", "token=BAR x.y.z", A),
          (462, "regex", "*", "token=", A), (462, "regex", "*", "other=1", NOT_FOUND)]],
    *[(f"TestBuildHTTPRoutes {RT}:478 source namespace matching: compared with the gateway pod's namespace, {ns}",
       one_vs(rule(dest("a"), match=[prefix("/", sourceNamespace=ns)])), {}, want)
      for ns, want in [("istio-system", A), ("foo", NOT_FOUND)]],
    (f"TestBuildHTTPRoutes {RT}:1207 redirect code 308",
     one_vs(rule(redirect={"uri": "/example.org", "authority": "some-authority.default.svc.cluster.local",
                           "redirectCode": 308})), {}, ("ok", 308, None)),
    (f"TestBuildHTTPRoutes {RT}:1456 direct response code",
     one_vs(rule(directResponse={"status": 503, "body": {"string": "unavailable"}})), {}, ("ok", 503, None)),
    # --- TestSortVHostRoutes: catch-alls last, the rest in order ---------------------------------------
    *[(f"TestSortVHostRoutes {RT}:3324 routes with catchall match, {p}",
       stream(APPS, GW, virtual_service("v1", ["*"], ["gateway"], [rule(dest("a"), match=[prefix("/")])], created=1),
              virtual_service("v2", ["*"], ["gateway"], [rule(dest("b"), match=[exact("/path1")])], created=2),
              virtual_service("v3", ["*"], ["gateway"], [rule(dest("c"), match=[prefix("/prefix1")])], created=3),
              virtual_service("v4", ["*"], ["gateway"], [rule(dest("d"), match=[{"uri": {"regex": ".*?regex1"}}])],
                              created=4)),
       {"path": p}, want)
      for p, want in [("/path1", B), ("/prefix1/x", C), ("/xregex1", D), ("/other", A)]],
    (f"TestSortVHostRoutes {RT}:3329 routes without catchall match keep their order",
     two_vs([rule(dest("a"), match=[exact("/path12")]), rule(dest("b"), match=[prefix("/path1")])],
            [rule(dest("c"), match=[prefix("/")])]), {"path": "/path12"}, A),
    # --- TestIsCatchAllRoute: a catch-all goes last, a route with extra conditions keeps its place -----
    *[(f"TestIsCatchAllRoute {RIT}:{line} {name}: {'moved last' if moved else 'keeps its place'}",
       two_vs([rule(dest("a"), match=[m])], [rule(dest("b"), match=[prefix("/x")])]),
       {"path": "/x?q=1", "headers": ["x-h:v"]}, B if moved else A)
      for line, name, m, moved in [
          (48, "catch all prefix", prefix("/"), True),
          (72, "catch all regex", {"uri": {"regex": ".*"}}, True),
          (86, "catch all prefix with headers", prefix("/", headers={"x-h": {"exact": "v"}}), False),
          (106, "uri regex with headers", {"uri": {"regex": ".*"}, "headers": {"x-h": {"regex": ".*"}}}, False),
          (135, "uri regex with query params", {"uri": {"regex": ".*"}, "queryParams": {"q": {"regex": ".*"}}},
           False)]],
    (f"TestIsCatchAllRoute {RIT}:48 a rule without match is a catch-all too (istiod gives it prefix /)",
     two_vs([rule(dest("a"))], [rule(dest("b"), match=[prefix("/x")])]), {"path": "/x"}, B),
]


@pytest.mark.parametrize(("objects", "request_", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_route_table_agrees_with_istiod(tmp_path, objects, request_, expected):
    assert outcome(trace(tmp_path, objects, **request_)) == expected


def test_unsupported_redirect_code_is_not_answered_and_the_step_says_it_is_uncertain(tmp_path):
    """TestBuildHTTPRoutes route/route_test.go:1221 invalid redirect code 317: ApplyRedirect leaves the route
    without an action (route.go:842-849). The engine does not invent a 317; it says the result depends on the
    route table Envoy kept after rejecting this one."""
    result = trace(tmp_path, one_vs(rule(redirect={"uri": "/x", "redirectCode": 317})))
    assert result["http_status"] != 317
    step = result["steps"][-1]
    assert step.get("uncertain") is True and "not yet supported" in step["result"]
