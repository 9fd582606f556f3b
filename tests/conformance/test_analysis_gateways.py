"""Gateway analyzers of Istio 1.30.3, case by case: IngressGatewayPortAnalyzer (IST0101 for a
selector matching no pod, IST0162 for a port no Service exposes; pkg/config/analysis/analyzers/
gateway/gateway.go) and ConflictingGatewayAnalyzer (IST0145; gateway/conflictinggateway.go).

Entries of TestAnalyzers (pkg/config/analysis/analyzers/analyzers_test.go) are cited as
``analyzers_test.go:<line of the entry's name>``; their objects as ``testdata/<file>:<line of kind>``.
Istio's codes map to the course's: IST0101 (selector) -> GW-SELECTOR-NO-WORKLOAD, IST0162 ->
GW-PORT-NOT-ON-SERVICE, IST0145 -> GW-CONFLICT (which names both Gateways in ``resources``).
"""

from __future__ import annotations

import pytest
from analysis_support import Case, run_case


def _gw(name: str, selector: str, *servers: str, ns: str = "", ts: str = "") -> str:
    """A Gateway; each server is ``"<number> <port name> <PROTOCOL> <host>[,<host>...]"``."""
    meta = f"name: {name}" + (f", namespace: {ns}" if ns else "") + (f", creationTimestamp: '{ts}'" if ts else "")
    lines = []
    for s in servers:
        number, pname, protocol, hosts = s.split()
        lines.append(f"  - port: {{number: {number}, name: {pname}, protocol: {protocol}}}\n"
                     f"    hosts: [{', '.join(repr(h) for h in hosts.split(','))}]")
    body = "\n".join(lines)
    return f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{{meta}}}\nspec:\n" \
           f"  selector: {{{selector}}}\n  servers:\n{body}\n"


def _pod(name: str, labels: str, ns: str = "default") -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\n"
            "spec: {containers: [{name: istio-proxy}]}\n")


def _svc(name: str, selector: str, ports: str, ns: str = "default") -> str:
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec: {{type: NodePort, selector: {{{selector}}}, ports: [{ports}]}}\n")


def docs(*parts: str) -> str:
    return "---\n".join(parts)


HTTPBIN = "Gateway default/httpbin-gateway"
PRIVATE = "myapp: private-ingressgateway"
PRIVATE_POD = _pod("my-ingressgateway-1234", PRIVATE)

PORT_CASES = [
    Case("TestAnalyzers/gatewayNoWorkload analyzers_test.go:162 testdata/gateway-no-workload.yaml:4",
         _gw("httpbin-gateway", "istio: ingresstypo", "80 http HTTP *"),
         found=(("GW-SELECTOR-NO-WORKLOAD", HTTPBIN),),
         note="Istio's Gateway has no servers, which istiod's webhook refuses (validation.go:427-428); a server "
              "is added so that the selector is what the case tests. The verbatim object is the next case."),
    Case("TestAnalyzers/gatewayNoWorkload (verbatim, no servers) analyzers_test.go:162 "
         "testdata/gateway-no-workload.yaml:4",
         "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: httpbin-gateway}\n"
         "spec: {selector: {istio: ingresstypo}}\n",
         found=(("MANIFEST-INVALID", "Gateway httpbin-gateway"),), absent=(("GW-SELECTOR-NO-WORKLOAD", None),),
         says=(("MANIFEST-INVALID", "must list at least one server"),),
         note="Does better than istioctl: the object never reaches a cluster (ValidateGateway, validation.go:427), "
              "so the engine says so instead of analyzing it."),
    Case("TestAnalyzers/gatewayBadPort analyzers_test.go:170 testdata/gateway-no-port.yaml:4",
         _gw("httpbin-gateway", "istio: ingressgateway", "80 http HTTP *", "8004 http2 HTTP *"),
         found=(("GW-PORT-NOT-ON-SERVICE", HTTPBIN),), says=(("GW-PORT-NOT-ON-SERVICE", "server port 8004"),)),
    Case("TestAnalyzers/gatewayCorrectPort analyzers_test.go:178 testdata/gateway-correct-port.yaml:4",
         _gw("httpbin-gateway", "istio: ingressgateway", "80 http HTTP *"),
         absent=(("GW-PORT-NOT-ON-SERVICE", None), ("GW-SELECTOR-NO-WORKLOAD", None))),
    Case("TestAnalyzers/gatewayCustomIngressGateway analyzers_test.go:186 "
         "testdata/gateway-custom-ingressgateway.yaml:4",
         docs(_gw("httpbin-gateway", PRIVATE, "8003 http2 HTTP *"), PRIVATE_POD,
              _svc("my-ingressgateway", PRIVATE, "{name: http2, port: 80, targetPort: 8003, nodePort: 31380}")),
         absent=(("GW-PORT-NOT-ON-SERVICE", None), ("GW-SELECTOR-NO-WORKLOAD", None))),
    Case("TestAnalyzers/gatewayCustomIngressGatewayBadPort analyzers_test.go:194 "
         "testdata/gateway-custom-ingressgateway-badport.yaml:4",
         docs(_gw("httpbin-gateway", PRIVATE, "8004 http2 HTTP *"), PRIVATE_POD,
              _svc("my-ingressgateway", PRIVATE, "{name: http2, port: 80, targetPort: 8003, nodePort: 31380}")),
         found=(("GW-PORT-NOT-ON-SERVICE", HTTPBIN),)),
    Case("TestAnalyzers/gatewayCustomIngressGatewayBadPortWithoutTarget analyzers_test.go:202 "
         "testdata/gateway-custom-ingressgateway-badport-notarget.yaml:4",
         docs(_gw("httpbin-gateway", PRIVATE, "8004 http2 HTTP *"), PRIVATE_POD,
              _svc("my-ingressgateway", PRIVATE, "{name: http2, port: 80, nodePort: 31380}")),
         found=(("GW-PORT-NOT-ON-SERVICE", HTTPBIN),)),
    Case("TestAnalyzers/gatewayCustomIngressGatewayTranslation analyzers_test.go:210 "
         "testdata/gateway-custom-ingressgateway-translation.yaml:4",
         docs(_gw("httpbin-gateway", PRIVATE, "80 http2 HTTP *"), PRIVATE_POD,
              _svc("my-ingressgateway", PRIVATE, "{name: http2, port: 80, targetPort: 8003, nodePort: 31380}")),
         absent=(("GW-PORT-NOT-ON-SERVICE", None),)),
]

SVC_SELECTOR = docs(
    _gw("httpbin8001-gateway", "myapp: ingressgateway-8001", "8001 http2 HTTP *"),
    _gw("httpbin8002-gateway", "myapp: ingressgateway-8001", "8002 http2 HTTP *"),
    _pod("my-ingressgateway-8001", "myapp: ingressgateway-8001"),
    _pod("my-ingressgateway-8002", "myapp: ingressgateway-8002"),
    _svc("my-8002", "myapp: ingressgateway-8002", "{name: http2, port: 8002, targetPort: 80, nodePort: 31380}"),
    _svc("my-8001", "myapp: ingressgateway-8001", "{name: http2, port: 8001}"))
PORT_CASES += [
    Case("TestAnalyzers/gatewayServiceMatchPod analyzers_test.go:218 "
         "testdata/gateway-custom-ingressgateway-svcselector.yaml:19 (httpbin8002-gateway)",
         SVC_SELECTOR, found=(("GW-PORT-NOT-ON-SERVICE", "Gateway default/httpbin8002-gateway"),),
         says=(("GW-PORT-NOT-ON-SERVICE", "server port 8002"),),
         note="Only Services selecting the Gateway's own pods count: my-8002 has port 8002 but selects other pods."),
    Case("TestAnalyzers/gatewayServiceMatchPod analyzers_test.go:218 "
         "testdata/gateway-custom-ingressgateway-svcselector.yaml:4 (httpbin8001-gateway)",
         SVC_SELECTOR, absent=(("GW-PORT-NOT-ON-SERVICE", "Gateway default/httpbin8001-gateway"),)),
]

ALPHA, BETA = "Gateway default/alpha", "Gateway default/beta"
CONFLICT_CASES = [
    Case("TestAnalyzers/conflicting gateways detect analyzers_test.go:247 testdata/conflicting-gateways.yaml:2",
         docs(_gw("beta", "istio: ingressgateway", "80 tcp TCP foo.bar"),
              _gw("alpha", "istio: ingressgateway", "80 http HTTP foo.bar")),
         found=(("GW-CONFLICT", ALPHA), ("GW-CONFLICT", BETA)),
         says=(("GW-CONFLICT", "The listener already serves TCP from default/beta"),),
         note="Does better than IST0145: one finding names the winner, the Gateway merged first (istiod sorts "
              "Gateways by creation time, then name: sortConfigByCreationTime, pilot/pkg/model/config.go:306; "
              "objects without a creationTimestamp count as created in the order they were loaded)."),
    Case("TestAnalyzers/gateways with different port are non-conflicting analyzers_test.go:256 "
         "testdata/gateway-different-port.yaml:2",
         docs(_gw("beta", "istio: ingressgateway", "443 tcp TCP foo.bar"),
              _gw("alpha", "istio: ingressgateway", "80 http HTTP foo.bar")),
         absent=(("GW-CONFLICT", None),)),
    Case("TestAnalyzers/conflicting gateways with multiple port declarations analyzers_test.go:264 "
         "testdata/conflicting-gateways-multiple-ports.yaml:2",
         docs(_gw("beta", "istio: ingressgateway", "80 tcp-80 TCP foo.bar", "90 tcp-90 TCP foo.bar"),
              _gw("alpha", "istio: ingressgateway", "70 http-70 HTTP foo.bar", "90 http-90 HTTP foo.bar")),
         found=(("GW-CONFLICT", ALPHA), ("GW-CONFLICT", BETA)), says=(("GW-CONFLICT", "on listener port 90"),),
         note="Istio's objects repeat a port name within one Gateway, which istiod's webhook refuses "
              "(ValidateGateway, validation.go:444-446); the ports are renamed uniquely here."),
    Case("TestAnalyzers/conflicting gateways detect by sub selector analyzers_test.go:273 "
         "testdata/conflicting-gateways-subSelector.yaml:2",
         docs(_gw("beta", "istio: ingressgateway, app: istio-ingressgateway, cusKey: cusValue", "80 tcp TCP foo.bar"),
              _gw("alpha", "istio: ingressgateway, cusKey: cusValue", "80 http HTTP foo.bar"),
              _pod("my-ingressgateway-1", "istio: ingressgateway, app: istio-ingressgateway, cusKey: cusValue"),
              _pod("my-ingressgateway-2", "istio: ingressgateway, app: istio-ingressgateway, cusKey: cusValue")),
         found=(("GW-CONFLICT", ALPHA), ("GW-CONFLICT", BETA), ("GW-CONFLICT", "Pod default/my-ingressgateway-1")),
         note="The two pods have no owner, so each is its own workload (named Pod ns/name); istiod programs "
              "each of them with both Gateways."),
    Case("TestAnalyzers/conflicting gateways detect: no port analyzers_test.go:282 "
         "testdata/conflicting-gateways-invalid-port.yaml:2",
         "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: beta}\n"
         "spec: {selector: {istio: ingressgateway}, servers: [{hosts: [foo.bar]}]}\n---\n"
         "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: alpha}\n"
         "spec: {selector: {istio: ingressgateway}, servers: [{hosts: [bar.bar]}]}\n",
         found=(("MANIFEST-INVALID", "Gateway beta"), ("MANIFEST-INVALID", "Gateway alpha")),
         absent=(("GW-CONFLICT", None),),
         note="Does better than istioctl: a server without port is refused by the Gateway CRD's schema "
              "(servers[].required: [port, hosts], crd-all.gen.yaml), so neither Gateway exists."),
    Case("TestAnalyzers/Analyze conflicting gateway with list type analyzers_test.go:938 "
         "testdata/analyze-list-type.yaml:2,17",
         _gw("alpha", "istio: ingressgateway", "80 tcp TCP foo.bar")
         + "---\napiVersion: v1\nkind: List\nitems:\n"
         + "".join("- " + g.replace("\n", "\n  ").rstrip() + "\n" for g in (
             _gw("beta-l", "istio: ingressgateway", "80 tcp TCP foo.bar"),
             _gw("alpha-l", "istio: ingressgateway", "80 http HTTP foo.bar"))),
         found=(("GW-CONFLICT", ALPHA), ("GW-CONFLICT", "Gateway default/alpha-l"),
                ("GW-CONFLICT", "Gateway default/beta-l"))),
]

# Where the engine does better than IST0145, following istiod's own merge instead.
BETTER_CASES = [
    Case("IST0145 compares declared ports; istiod merges on the resolved listener port "
         "(resolvePorts, pilot/pkg/model/gateway.go:482): 80 and 8080 meet on 8080 behind Service 80->8080",
         docs(_gw("first", "istio: ingressgateway", "80 http HTTP shop.example.com", ts="2026-01-01T00:00:00Z"),
              _gw("second", "istio: ingressgateway", "8080 http HTTP shop.example.com", ts="2026-01-02T00:00:00Z"),
              _svc("istio-ingressgateway", "istio: ingressgateway", "{name: http2, port: 80, targetPort: 8080}",
                   ns="istio-system")),
         found=(("GW-CONFLICT", "Gateway default/first"), ("GW-CONFLICT", "Gateway default/second")),
         says=(("GW-CONFLICT", "on listener port 8080 (declared as 80 and 8080)"),)),
    Case("IST0145 compares host strings (model.CheckDuplicates, pilot/pkg/model/gateway.go:560); routes of "
         "*.example.com and a.example.com on one HTTP listener still meet in one route table (mergeGateways, "
         "gateway.go:180)",
         docs(_gw("wild", "istio: ingressgateway", "80 http HTTP *.example.com", ts="2026-01-01T00:00:00Z"),
              _gw("exact", "istio: ingressgateway", "80 http HTTP a.example.com", ts="2026-01-02T00:00:00Z")),
         found=(("GW-CONFLICT", "Gateway default/wild"), ("GW-CONFLICT", "Gateway default/exact"))),
    Case("IST0145 reports both Gateways alike; istiod keeps the older one's server (sortConfigByCreationTime, "
         "pilot/pkg/model/config.go:306), so the finding names it as the winner",
         docs(_gw("aaa-newer", "istio: ingressgateway", "80 http HTTP foo.bar", ts="2026-03-01T00:00:00Z"),
              _gw("zzz-older", "istio: ingressgateway", "80 tcp TCP foo.bar", ts="2026-02-01T00:00:00Z")),
         says=(("GW-CONFLICT", "Gateways default/zzz-older and default/aaa-newer"),),
         found=(("GW-CONFLICT", "Gateway default/aaa-newer"),)),
]

ALL = PORT_CASES + CONFLICT_CASES + BETTER_CASES


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_gateway_analyzer_case(tmp_path, case):
    run_case(tmp_path, case)
