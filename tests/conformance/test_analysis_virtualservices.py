"""VirtualService analyzers of Istio 1.30.3, case by case: GatewayAnalyzer (IST0101 for a missing
Gateway, IST0132 for hosts no server offers; pkg/config/analysis/analyzers/virtualservice/
gateways.go), DestinationHostAnalyzer (IST0101/IST0112; destinationhosts.go), DestinationRuleAnalyzer
(IST0101 for an undefined subset; destinationrules.go) and istiod's VirtualService validation as
istioctl reports it (IST0130/IST0131; pkg/config/validation/validation.go:2053, through
analyzers/schema/validation.go:100).

Entries of TestAnalyzers (pkg/config/analysis/analyzers/analyzers_test.go) are cited as
``analyzers_test.go:<line of the entry's name>``, objects as ``testdata/<file>:<line of kind>``.
Codes: IST0101 (gateway) -> VS-GATEWAY-NOT-FOUND, IST0132 -> VS-HOST-NOT-IN-GATEWAY, IST0101/IST0112
(destination) -> VS-DESTINATION-NOT-FOUND / VS-DESTINATION-PORT-MISMATCH, IST0101 (subset) ->
VS-SUBSET-NOT-FOUND, IST0130 -> VS-RULE-UNREACHABLE.
"""

from __future__ import annotations

import pytest
from analysis_support import Case, run_case

NOT_IN_GW = "VS-HOST-NOT-IN-GATEWAY"
DEST = ("VS-DESTINATION-NOT-FOUND", "VS-DESTINATION-PORT-MISMATCH")


def _vs(name: str, ns: str, hosts: str | None, gateways: str | None, http: str, extra: str = "") -> str:
    spec = ([f"hosts: [{hosts}]"] if hosts is not None else []) + \
        ([f"gateways: [{gateways}]"] if gateways is not None else []) + [f"http: {http}"] + ([extra] if extra else [])
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec: {{{', '.join(spec)}}}\n")


def _gw(name: str, ns: str, *servers: str, version: str = "v1") -> str:
    """Each server: ``"<number> <port name> <host>[,<host>]"`` (HTTP)."""
    body = ", ".join(f"{{port: {{number: {s.split()[0]}, name: {s.split()[1]}, protocol: HTTP}}, "
                     f"hosts: [{', '.join(repr(h) for h in s.split()[2].split(','))}]}}" for s in servers)
    return (f"apiVersion: networking.istio.io/{version}\nkind: Gateway\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec: {{selector: {{istio: ingressgateway}}, servers: [{body}]}}\n")


def docs(*parts: str) -> str:
    return "---\n".join(parts)


def route(host: str, *, subset: str = "", port: int = 0, match: str = "") -> str:
    dest = f"host: {host}" + (f", subset: {subset}" if subset else "") + (f", port: {{number: {port}}}" if port else "")
    return "{" + (f"match: [{match}], " if match else "") + f"route: [{{destination: {{{dest}}}}}]}}"


def one(r: str) -> str:
    return f"[{r}]"


# --- GatewayAnalyzer: virtualServiceGateways, analyzers_test.go:473 --------------------------------
VSG = "TestAnalyzers/virtualServiceGateways analyzers_test.go:473 testdata/virtualservice_gateways.yaml"
GATEWAYS = docs(_gw("httpbin-gateway", "default", "80 http *"), _gw("crossnamespace-gw", "another", "80 http *"),
                _vs("httpbin", "default", "'*'", "httpbin-gateway", one(route("httpbin"))),
                _vs("httpbin-bogus", "default", "'*'", "httpbin-gateway-bogus", one(route("httpbin"))),
                _vs("httpbin-mesh", "default", "'*.example.com'", "mesh", one(route("httpbin"))),
                _vs("cross-test", "default", "'*'", "another/crossnamespace-gw", one(route("httpbin"))))
GATEWAY_NOTE = ("Istio's Gateways have no servers and its VirtualServices no routes; istiod's webhook refuses both "
                "(validation.go:427, :1828), so a server on 80 for * and a route are added. IST0132 then has nothing "
                "to say about httpbin and cross-test, which Istio expects only because their Gateway has no host.")
VS_CASES = [
    Case(f"{VSG}:21 (httpbin: the Gateway exists)", GATEWAYS,
         absent=(("VS-GATEWAY-NOT-FOUND", "VirtualService default/httpbin"),
                 (NOT_IN_GW, "VirtualService default/httpbin")),
         note=GATEWAY_NOTE),
    Case(f"{VSG}:31 (httpbin-bogus: no such Gateway)", GATEWAYS,
         found=(("VS-GATEWAY-NOT-FOUND", "VirtualService default/httpbin-bogus"),),
         absent=((NOT_IN_GW, "VirtualService default/httpbin-bogus"),),
         says=(("VS-GATEWAY-NOT-FOUND", "resolves to Gateway default/httpbin-gateway-bogus"),),
         note="Does better than istioctl, which adds IST0132 for the same missing Gateway (gateways.go:81-99): one "
              "finding per cause."),
    Case(f"{VSG}:41 (httpbin-mesh: 'mesh' is no Gateway)", GATEWAYS,
         absent=(("VS-GATEWAY-NOT-FOUND", "VirtualService default/httpbin-mesh"),),
         note="A mesh-bound VirtualService may not use host * (validation.go:1806), so its host is *.example.com."),
    Case(f"{VSG}:51 (cross-test: another/crossnamespace-gw)", GATEWAYS,
         absent=(("VS-GATEWAY-NOT-FOUND", "VirtualService default/cross-test"),
                 (NOT_IN_GW, "VirtualService default/cross-test")), note=GATEWAY_NOTE),
    Case(f"{VSG}:4,21 (verbatim: a Gateway without servers)",
         "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: httpbin-gateway}\n"
         "spec: {selector: {istio: ingressgateway}}\n---\n"
         + _vs("httpbin", "default", "'*'", "httpbin-gateway", one(route("httpbin"))),
         found=(("MANIFEST-INVALID", "Gateway httpbin-gateway"),
                ("VS-GATEWAY-NOT-FOUND", "VirtualService default/httpbin")),
         note="Does better than istioctl (IST0132): the Gateway is refused by istiod's webhook (ValidateGateway, "
              "validation.go:427), so on a cluster the VirtualService names a Gateway that does not exist."),
    Case("TestAnalyzers/virtualServiceInternalGatewayRef analyzers_test.go:493 "
         "testdata/virtualservice_internal_gateway_ref.yaml:3",
         _vs("httpbin", "default", "foo.com", "'istio-ingress/gateway~istio-autogenerated-k8s-gateway~foo'",
             one(route("httpbin", port=80))),
         found=(("MANIFEST-INVALID", "VirtualService default/httpbin"),),
         says=(("MANIFEST-INVALID", "is not a Gateway name"),),
         note="istioctl warns IST0165 (reference to a generated gateway); istiod's webhook refuses the name outright "
              "for a VirtualService of its own API (validateGatewayNames, validation.go:2401), and the engine "
              "follows the webhook."),
]

# --- GatewayAnalyzer: host not found in the gateway, analyzers_test.go:712, 725 ---------------------
HNF = "testdata/virtualservice_host_not_found_gateway.yaml"
TO_RATINGS = one(route("ratings", match="{uri: {prefix: /}}"))


def _host_file(version: str = "v1") -> str:
    return docs(
        _gw("testing-gateway-01-test-01", "istio-system", "80 http testing-01.com", version=version),
        _vs("testing-service-01-test-01", "default", "testing-01.com",
            "istio-system/testing-gateway-01-test-01", TO_RATINGS),
        _vs("testing-service-02-test-01", "default", "wrong-01.com", "istio-system/testing-gateway-01-test-01",
            TO_RATINGS),
        _gw("testing-gateway-01-test-02", "istio-system", "80 http *.testing-02.com", version=version),
        _vs("testing-service-01-test-02", "default", "web.testing-02.com", "istio-system/testing-gateway-01-test-02",
            TO_RATINGS),
        _vs("testing-service-02-test-02", "default", "web.wrong.com", "istio-system/testing-gateway-01-test-02",
            TO_RATINGS),
        _gw("testing-gateway-01-test-03", "istio-system", "80 http *.api.testing-03.com", version=version),
        _gw("testing-gateway-02-test-03", "istio-system", "80 http *.homepage.testing-03.com", version=version),
        _vs("testing-service-01-test-03", "default", "user.api.testing-03.com, profile.homepage.testing-03.com",
            "istio-system/testing-gateway-01-test-03, istio-system/testing-gateway-02-test-03", TO_RATINGS),
        _vs("testing-service-02-test-03", "default", "user.api.testing-03.com",
            "istio-system/testing-gateway-01-test-03, istio-system/testing-gateway-02-test-03", TO_RATINGS),
        _gw("testing-gateway-01-test-04", "istio-system", "80 http *.testing-01-04.com",
            "80 http-2 web.testing-02-04.com", version=version),
        _vs("testing-service-01-test-04", "default", "web.testing-02-04.com",
            "istio-system/testing-gateway-01-test-04", TO_RATINGS),
        _vs("testing-service-02-test-04", "default", "profile.user.testing-01-04.com",
            "istio-system/testing-gateway-01-test-04", TO_RATINGS),
        _vs("testing-service-03-test-04", "default", "user.testing-02-04.com, users.testing-02-04.com",
            "istio-system/testing-gateway-01-test-04", TO_RATINGS))


HOSTS = _host_file()
DUP_PORT_NOTE = ("testing-gateway-01-test-04 repeats the port name http on its two servers, which istiod's webhook "
                 "refuses (validation.go:444-446); the second is renamed http-2.")
for line, name, bad, note in [
    (19, "testing-service-01-test-01", False, ""), (37, "testing-service-02-test-01", True, ""),
    (71, "testing-service-01-test-02", False, "*.testing-02.com covers web.testing-02.com"),
    (89, "testing-service-02-test-02", True, ""),
    (139, "testing-service-01-test-03", False, "each of the two Gateways offers one of the hosts"),
    (159, "testing-service-02-test-03", True, "the second Gateway offers none of its hosts: one finding for that "
                                             "Gateway, as IST0132 checks each listed Gateway (gateways.go:62-99)"),
    (200, "testing-service-01-test-04", False, DUP_PORT_NOTE),
    (218, "testing-service-02-test-04", False, DUP_PORT_NOTE),
    (236, "testing-service-03-test-04", True, DUP_PORT_NOTE),
]:
    vs = f"VirtualService default/{name}"
    cid = f"TestAnalyzers/host defined in virtualservice not found in the gateway analyzers_test.go:712 {HNF}:{line}"
    VS_CASES.append(Case(cid, HOSTS, found=((NOT_IN_GW, vs),) if bad else (),
                         absent=() if bad else ((NOT_IN_GW, vs),), note=note))
VS_CASES.append(Case(
    "TestAnalyzers/host defined in virtualservice not found in the gateway(beta version) analyzers_test.go:725 "
    "testdata/virtualservice_host_not_found_gateway_beta.yaml:3-236",
    _host_file("v1beta1"),
    found=tuple((NOT_IN_GW, f"VirtualService default/{n}") for n in (
        "testing-service-02-test-01", "testing-service-02-test-02", "testing-service-02-test-03",
        "testing-service-03-test-04")),
    absent=tuple((NOT_IN_GW, f"VirtualService default/{n}") for n in (
        "testing-service-01-test-01", "testing-service-01-test-02", "testing-service-01-test-03",
        "testing-service-01-test-04", "testing-service-02-test-04")),
    note="At 1.30.3 the beta file is identical to the v1 one; here its Gateways are written as "
         "networking.istio.io/v1beta1, the version its name refers to, which istiod still serves."))

# --- with a namespace prefix on the Gateway host, analyzers_test.go:738, 748 ------------------------
NSP = "testdata/virtualservice_host_not_found_gateway_with_ns_prefix.yaml"
PREFIX_GATEWAYS = (("testing-gateway", "./testing-01.com", "01"), ("testing-gateway-2", "*/testing-01.com", "02"),
                   ("testing-gateway-3", "*/*", "03"), ("testing-gateway-4", "testing-01.com", "04"))
PREFIX_FILE = docs(*(part for gw, host, n in PREFIX_GATEWAYS for part in (
    _gw(gw, "istio-system", f"80 http {host}"),
    *(_vs(f"testing-service-01-test-{n}", ns, "testing-01.com", f"istio-system/{gw}", TO_RATINGS)
      for ns in ("istio-system", "default")))))
for line, name, ns, bad, note in [
    (18, "testing-service-01-test-01", "istio-system", False, "'./' offers the host to the Gateway's own namespace"),
    (36, "testing-service-01-test-01", "default", True,
     "IST0132 drops hosts whose namespace prefix names another namespace (host.NamesForNamespace, "
     "gateways.go:120); the engine withholds them per server the same way"),
    (70, "testing-service-01-test-02", "istio-system", False, ""),
    (88, "testing-service-01-test-02", "default", False, ""),
    (122, "testing-service-01-test-03", "istio-system", False, "*/* offers * to every namespace"),
    (140, "testing-service-01-test-03", "default", False, "*/* offers * to every namespace"),
    (174, "testing-service-01-test-04", "istio-system", False, "no prefix means */"),
    (192, "testing-service-01-test-04", "default", False, "no prefix means */"),
]:
    vs = f"VirtualService {ns}/{name}"
    cid = (f"TestAnalyzers/host defined in virtualservice not found in the gateway with ns analyzers_test.go:738 "
           f"{NSP}:{line}")
    VS_CASES.append(Case(cid, PREFIX_FILE, found=((NOT_IN_GW, vs),) if bad else (),
                         absent=() if bad else ((NOT_IN_GW, vs),), note=note))
VS_CASES.append(Case(
    "TestAnalyzers/host defined in virtualservice not found in the gateway with ns(beta version) analyzers_test.go:748 "
    "testdata/virtualservice_host_not_found_gateway_with_ns_prefix_beta.yaml:2-192",
    PREFIX_FILE.replace("networking.istio.io/v1\nkind: Gateway", "networking.istio.io/v1beta1\nkind: Gateway"),
    found=((NOT_IN_GW, "VirtualService default/testing-service-01-test-01"),),
    absent=((NOT_IN_GW, "VirtualService istio-system/"),
            *((NOT_IN_GW, f"VirtualService default/testing-service-01-test-0{n}") for n in "234")),
    note="Identical to the v1 file at 1.30.3; its Gateways are written as v1beta1 here."))

# --- DestinationHostAnalyzer: virtualServiceDestinationHosts, analyzers_test.go:449 ------------------
DH = "TestAnalyzers/virtualServiceDestinationHosts analyzers_test.go:449 testdata/virtualservice_destinationhosts.yaml"
DEST_FILE = docs(
    "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n"
    "spec: {ports: [{port: 42, name: tcp-test, protocol: TCP}]}\n",
    "apiVersion: v1\nkind: Service\nmetadata: {name: reviews-2port, namespace: default}\n"
    "spec: {ports: [{port: 80, name: http-test, protocol: TCP}, {port: 443, name: https-test, protocol: TCP}]}\n",
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: external-reviews, namespace: default}\n"
    "spec: {hosts: [external-reviews.org]}\n",
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: eu-wildcard, namespace: default}\n"
    "spec: {hosts: ['*.eu.bookinfo.com']}\n",
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
    "metadata: {name: service-entry-exported, namespace: other}\n"
    "spec: {exportTo: [default], hosts: [abc.bookinfo.com]}\n",
    _vs("reviews", "default", None, None, one(route("reviews", subset="v1"))),
    _vs("reviews-bogushost", "default", None, None, one(route("reviews-bogus", subset="v1"))),
    _vs("reviews-fqdn", "default", None, None, one(route("reviews.default.svc.cluster.local", subset="v1"))),
    _vs("reviews-external", "default", None, None, one(route("external-reviews.org"))),
    _vs("reviews-bookinfo-eu", "default", None, None, one(route("reviews.eu.bookinfo.com"))),
    _vs("reviews-bookinfo-eu-wildcard", "default", None, None, one(route("'*.eu.bookinfo.com'"))),
    _vs("reviews-mirror", "default", None, None,
        "[{route: [{destination: {host: reviews, subset: v1}}], mirror: {host: reviews, subset: v1}}]"),
    _vs("reviews-bogusport", "default", None, None, one(route("reviews", subset="v1", port=999))),
    _vs("reviews-2port-missing", "default", None, None, one(route("reviews-2port", subset="v1"))),
    _vs("reviews-2port-present", "default", None, None, one(route("reviews-2port", subset="v1", port=80))),
    _vs("cross-namespace", "istio-system", "reviews", None, one(route("reviews.default.svc.cluster.local"))),
    "apiVersion: v1\nkind: Service\nmetadata: {name: hello, namespace: hello, annotations: "
    "{networking.istio.io/exportTo: 'hello1,hello2,.'}}\n"
    "spec: {selector: {app: hello}, ports: [{port: 9080, name: http}]}\n",
    *(_vs("hello", ns, "hello", None, one(route("hello.hello.svc.cluster.local")))
      for ns in ("hello1", "hello2", "hello")),
    _vs("vs-to-extporto-serviceentry", "default", None, None, one(route("abc.bookinfo.com"))),
)
for line, name, code, note in [
    (78, "default/reviews", None, "its subset v1 is undefined, which is DestinationRuleAnalyzer's concern "
                                  "(VS-SUBSET-NOT-FOUND here), not this analyzer's"),
    (90, "default/reviews-bogushost", "VS-DESTINATION-NOT-FOUND",
     "Istio's first route entry is {}, which the VirtualService CRD refuses (route[].required: [destination]); "
     "it is left out"),
    (103, "default/reviews-fqdn", None, ""), (115, "default/reviews-external", None, ""),
    (127, "default/reviews-bookinfo-eu", None, "covered by the *.eu.bookinfo.com ServiceEntry"),
    (138, "default/reviews-bookinfo-eu-wildcard", None, ""), (160, "default/reviews-mirror", None, ""),
    (190, "default/reviews-bogusport", "VS-DESTINATION-PORT-MISMATCH", "istio_code IST0101 (host:port not found)"),
    (204, "default/reviews-2port-missing", None,
     "istioctl warns IST0112 on every omitted port of a multi-port Service; the engine follows istiod's "
     "GetDestinationCluster (pilot/pkg/networking/core/route/route.go:362-368): a mesh route without a port "
     "uses the port the request came in on, which the Service has, so nothing fails"),
    (216, "default/reviews-2port-present", None, ""), (230, "istio-system/cross-namespace", None, ""),
    (288, "hello1/hello", None, "the Service is exported to hello1 (annotation)"),
    (305, "hello2/hello", None, ""), (318, "hello/hello", None, "'.' exports to the Service's own namespace"),
    (358, "default/vs-to-extporto-serviceentry", None, "the ServiceEntry in other is exported to default"),
]:
    vs = f"VirtualService {name}"
    found = ((code, vs),) if code else ()
    VS_CASES.append(Case(f"{DH}:{line} ({name})", DEST_FILE, found=found,
                         absent=() if code else tuple((c, vs) for c in DEST), note=note))
VS_CASES.append(Case(
    f"{DH}:204 (reviews-2port-missing bound to a Gateway server on 8080: route.go:362-368 falls back to 8080)",
    docs(DEST_FILE, _gw("gw-8080", "default", "8080 http *"),
         _vs("reviews-2port-gateway", "default", "'*'", "gw-8080", one(route("reviews-2port")))),
    found=(("VS-DESTINATION-PORT-MISMATCH", "VirtualService default/reviews-2port-gateway"),),
    says=(("VS-DESTINATION-PORT-MISMATCH", "the Service has several ports, so istiod uses the port of the Gateway "
           "server"),),
    note="Istio's IST0112 fires for the omitted port as such; the engine reports what istiod builds: cluster "
         "outbound|8080||reviews-2port..., which does not exist (503 NC)."))

# ServiceEntry hosts are looked up as written: case-sensitive (service_lookup.go:116 is a map lookup,
# :157 a strings.HasSuffix), as istiod names the route's cluster after the destination as written.
CASE_NOTE = ("Hosts are compared as Go strings: GetDestinationHost (pkg/config/analysis/analyzers/util/"
             "service_lookup.go:116 exact, :154-157 wildcard suffix) and istiod's cluster name outbound|80||<host as "
             "written> (GetDestinationCluster, pilot/pkg/networking/core/route/route.go:356), so a ServiceEntry host "
             "spelled in another case declares another host: 503 NC.")
SE_CASE = docs(
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: httpbin, namespace: default}\n"
    "spec: {hosts: [HTTPBin.org, '*.Example.com', '*.example.org'], ports: [{number: 80, name: http, protocol: HTTP}], "
    "resolution: DNS}\n",
    _vs("to-httpbin", "default", None, None, one(route("httpbin.org"))),
    _vs("to-httpbin-as-declared", "default", None, None, one(route("HTTPBin.org"))),
    _vs("to-api", "default", None, None, one(route("api.example.com"))),
    _vs("to-api-as-declared", "default", None, None, one(route("api.Example.com"))),
    _vs("to-api-org", "default", None, None, one(route("api.example.org"))))
for name, bad in [("to-httpbin", True), ("to-httpbin-as-declared", False), ("to-api", True),
                  ("to-api-as-declared", False), ("to-api-org", False)]:
    vs = f"VirtualService default/{name}"
    VS_CASES.append(Case(f"service_lookup.go:116,157 (ServiceEntry host in another case: {name})", SE_CASE,
                         found=(("VS-DESTINATION-NOT-FOUND", vs),) if bad else (),
                         absent=() if bad else (("VS-DESTINATION-NOT-FOUND", vs),), note=CASE_NOTE))

# --- DestinationRuleAnalyzer: virtualServiceDestinationRules, analyzers_test.go:464 ------------------
DR = "TestAnalyzers/virtualServiceDestinationRules analyzers_test.go:464 testdata/virtualservice_destinationrules.yaml"
DR_FILE = docs(
    "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n"
    "spec: {selector: {app: reviews}, ports: [{port: 9080, name: http}]}\n",
    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: default}\n"
    "spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}]}\n",
    _vs("reviews", "default", None, None, one(route("reviews", subset="v1"))),
    _vs("reviews-bogussubset", "default", None, None, one(route("reviews", subset="bogus"))),
    _vs("reviews-fqdn", "default", None, None, one(route("reviews.default.svc.cluster.local", subset="v1"))),
    _vs("reviews-mirror", "default", None, None,
        "[{route: [{destination: {host: reviews, subset: v1}}], mirror: {host: reviews, subset: v1}}]"))
DR_NOTE = "Istio's file has no Service; one is added, since without it the host itself is not found."
for line, name, bad in [(14, "reviews", False), (26, "reviews-bogussubset", True), (38, "reviews-fqdn", False),
                        (50, "reviews-mirror", False)]:
    vs = f"VirtualService default/{name}"
    VS_CASES.append(Case(f"{DR}:{line} ({name})", DR_FILE, found=(("VS-SUBSET-NOT-FOUND", vs),) if bad else (),
                         absent=() if bad else (("VS-SUBSET-NOT-FOUND", vs),), note=DR_NOTE))

# --- istiod's validation, IST0130 and IST0131: dupmatches, analyzers_test.go:684 --------------------
DUP = "TestAnalyzers/dupmatches analyzers_test.go:684"
UNREACHABLE = "VS-RULE-UNREACHABLE"
RULE_CASES = [
    ("testdata/virtualservice_dupmatches.yaml:2", "foo", "sample-foo-cluster01",
     "[{route: [{destination: {host: sample.foo.svc.cluster.local}}]}, "
     "{route: [{destination: {host: sample.bar.svc.cluster.local, subset: v1}}]}]", True,
     "IST0130 'only the last rule can have no matches' (validation.go:2063-2068)"),
    ("testdata/virtualservice_dupmatches.yaml:26", "default", "duplicate-match",
     "[{name: to-foo, match: [{name: products, uri: {prefix: /api/v1/products}}], route: [{destination: "
     "{host: sample.foo.svc.cluster.local}}]}, {name: to-bar, match: [{uri: {prefix: /api/v1/products}}], "
     "route: [{destination: {host: sample.bar.svc.cluster.local}}]}]", True,
     "IST0130 'all matches used by prior rules': the match repeats, names aside (asJSON, validation.go:2193)"),
    ("testdata/virtualservice_dupmatches.yaml:51", "default", "almost-duplicate-match",
     "[{match: [{uri: {prefix: /api/v1/products}}], route: [{destination: {host: sample.foo.svc.cluster.local}}]}, "
     "{match: [{uri: {prefix: /api/v1/products}}, {uri: {prefix: /potato}}], route: [{destination: "
     "{host: sample.bar.svc.cluster.local}}]}]", False, "/potato still reaches the rule: IST0131 (info) only"),
    ("testdata/virtualservice_overlappingmatches.yaml:2", "default", "non-method-get",
     "[{match: [{uri: {prefix: /api/v1/product}}, {uri: {prefix: /api/v1/products}, method: {exact: GET}}], "
     "route: [{destination: {host: sample.foo.svc.cluster.local}}]}]", False,
     "an overlap inside one rule leaves the rule reachable (IST0131 only)"),
    ("testdata/virtualservice_overlappingmatches.yaml:22", "default", "uri-with-prefix-exact",
     "[{match: [{uri: {prefix: /}}, {uri: {exact: /}, method: {exact: GET}}], "
     "route: [{destination: {host: sample.foo.svc.cluster.local}}]}]", False, ""),
    ("testdata/virtualservice_overlappingmatches.yaml:42", "default", "overlapping-in-single-match",
     "[{match: [{uri: {prefix: /api/v1/product}, method: {exact: GET}}, {uri: {prefix: /api/v1/products}, "
     "method: {exact: GET}}], route: [{destination: {host: sample.foo.svc.cluster.local}}]}]", False, ""),
    ("testdata/virtualservice_overlappingmatches.yaml:64", "default", "overlapping-in-two-matches",
     "[{match: [{uri: {prefix: /api/v1/product}, method: {exact: GET}}], route: [{destination: "
     "{host: sample.foo.svc.cluster.local}}]}, {match: [{uri: {prefix: /api/v1/products}, method: {exact: GET}}], "
     "route: [{destination: {host: sample.bar.svc.cluster.local}}]}]", True,
     "Does better than istioctl, which has only IST0131 (info, coveredValidation at validation.go:1974): every "
     "request the second rule matches is taken by the first, since Envoy uses the first matching route"),
    ("testdata/virtualservice_overlappingmatches.yaml:92", "default", "overlapping-mathes-with-different-methods",
     "[{match: [{uri: {prefix: /api/v1/prod}, method: {exact: GET}}], route: [{destination: "
     "{host: sample.foo.svc.cluster.local}}]}, {match: [{uri: {prefix: /api/v1/product}, method: {exact: GET}}, "
     "{uri: {prefix: /api/v1/products}, method: {exact: POST}}], route: [{destination: "
     "{host: sample.bar.svc.cluster.local}}]}]", False, "the POST match still reaches the second rule"),
]
for where, ns, name, http, dead, note in RULE_CASES:
    vs = f"VirtualService {ns}/{name}"
    hosts = "sample.foo.svc.cluster.local" if name == "sample-foo-cluster01" else "sample.baz.svc.cluster.local"
    VS_CASES.append(Case(f"{DUP} {where} ({name})", _vs(name, ns, hosts, None, http), defaults=False,
                         found=((UNREACHABLE, vs),) if dead else (), absent=() if dead else ((UNREACHABLE, vs),),
                         note=note))

# --- short VirtualService hosts are expanded before binding (istiod, not istioctl) ----------------------
SHORT = ("istiod binds a VirtualService with its hosts resolved first (ResolveVirtualServiceShortnames, "
         "pilot/pkg/model/virtualservice.go:128, called at virtualservice_controller.go:269; "
         "ResolveShortnameToFQDN, config.go:197) and then matches them against the server hosts "
         "(pickMatchingGatewayHosts, pilot/pkg/networking/core/gateway.go:1052-1073)")
SHORT_VS = _vs("reviews", "default", "reviews", "bookinfo-gateway", one(route("reviews")))
VS_CASES += [
    Case("istiod virtualservice.go:128 + gateway.go:1069 (short VS host, the Gateway offers its FQDN)",
         docs(_gw("bookinfo-gateway", "default", "80 http reviews.default.svc.cluster.local"), SHORT_VS),
         absent=((NOT_IN_GW, "VirtualService default/reviews"),),
         note=f"{SHORT}: hosts: [reviews] in default binds to reviews.default.svc.cluster.local. istioctl's IST0132 "
              "compares the hosts as written (vsHostInGateway, pkg/config/analysis/analyzers/virtualservice/"
              "gateways.go:103-133) and reports it; the engine follows istiod, as the request trace does."),
    Case("istiod virtualservice.go:128 + gateway.go:1069 (short VS host, the Gateway offers another namespace's FQDN)",
         docs(_gw("bookinfo-gateway", "default", "80 http reviews.prod.svc.cluster.local"), SHORT_VS),
         found=((NOT_IN_GW, "VirtualService default/reviews"),),
         says=((NOT_IN_GW, "reviews (= reviews.default.svc.cluster.local)"),),
         note=f"{SHORT}: reviews in namespace default means reviews.default.svc.cluster.local, not the prod one, "
              "and the message says so. (A short server host, the other way round, never gets this far: istiod's "
              "webhook refuses it, validateSidecarOrGatewayHostnamePart, pkg/config/validation/agent/"
              "validation.go:859.)"),
    Case("istiod virtualservice.go:128 (short VS host, the Gateway offers a wildcard of its namespace)",
         docs(_gw("bookinfo-gateway", "default", "80 http *.default.svc.cluster.local"), SHORT_VS),
         absent=((NOT_IN_GW, "VirtualService default/reviews"),), note=SHORT),
]


@pytest.mark.parametrize("case", VS_CASES, ids=[c.id for c in VS_CASES])
def test_virtual_service_analyzer_case(tmp_path, case):
    run_case(tmp_path, case)
