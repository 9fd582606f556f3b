"""istiod's validating webhook, case by case: what `kubectl apply` of a Gateway, VirtualService or
DestinationRule is refused for, from Istio 1.30.3's own tables in
pkg/config/validation/validation_test.go (TestValidateGateway :76, TestValidateServer :247,
TestValidateServerPort :418, TestValidateVirtualService :2302, TestValidateDestinationRule :2823).

The observable: a refused object is MANIFEST-INVALID naming it, with the field in the message (the
engine then leaves it out, as the cluster would); an accepted one loads without MANIFEST-INVALID.
Istio's cases call the validation functions on protobuf messages; here each is a whole object in
YAML, so a case that checks one server gets a Gateway around it. Cases id: ``<test>
validation_test.go:<line> <case name>``.
"""

from __future__ import annotations

import pytest
from analysis_support import Case, run_case

INVALID = "MANIFEST-INVALID"
GW_REF, VS_REF, DR_REF = "Gateway default/g", "VirtualService default/v", "DestinationRule default/d"


def gateway(servers: str) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: default}\n"
            f"spec: {{selector: {{istio: ingressgateway}}, servers: {servers}}}\n")


def server(hosts: str = "[foo.bar.com]", port: str = "{number: 7, name: http, protocol: http}", extra: str = "") -> str:
    return f"[{{hosts: {hosts}, port: {port}{', ' + extra if extra else ''}}}]"


def vs(spec: str) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: default}\n"
            f"spec: {spec}\n")


def dr(spec: str) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, namespace: default}\n"
            f"spec: {spec}\n")


ROUTE = "http: [{route: [{destination: {host: foo.baz}}]}]"


def refused(cid: str, yaml: str, ref: str, field: str, note: str = "") -> Case:
    return Case(cid, yaml, found=((INVALID, ref),), says=((INVALID, f"field {field} "),), defaults=False, note=note)


def accepted(cid: str, yaml: str, note: str = "") -> Case:
    return Case(cid, yaml, absent=((INVALID, None),), defaults=False, note=note)


G, S, P = ("TestValidateGateway validation_test.go", "TestValidateServer validation_test.go",
           "TestValidateServerPort validation_test.go")
V, D = "TestValidateVirtualService validation_test.go", "TestValidateDestinationRule validation_test.go"
CASES = [
    refused(f"{G}:83 empty", gateway("[]"), GW_REF, "spec.servers"),
    accepted(f"{G}:86 happy domain", gateway(server(port="{name: name1, number: 7, protocol: http}"))),
    accepted(f"{G}:96 happy multiple servers", gateway(server(port="{name: name1, number: 7, protocol: http}"))),
    refused(f"{G}:108 ~/ host outside Gateway API semantics", gateway(server(hosts="['~/foo.bar.com']")), GW_REF,
            "spec.servers[0].hosts[0]"),
    refused(f"{G}:118 invalid port", gateway(server(port="{name: name1, number: 66000, protocol: http}")), GW_REF,
            "spec.servers[0].port.number"),
    refused(f"{G}:130 duplicate port names",
            gateway("[{hosts: [foo.bar.com], port: {name: foo, number: 80, protocol: http}}, "
                    "{hosts: [scooby.doo.com], port: {name: foo, number: 8080, protocol: http}}]"),
            GW_REF, "spec.servers[1].port.name"),
    refused(f"{G}:146 invalid domain", gateway(server(hosts="['foo.*.bar.com']", port="{number: 7, protocol: http}")),
            GW_REF, "spec.servers[0].port.name",
            note="Istio's server also lacks a port name, which the CRD refuses first here; the domain alone is "
                 "TestValidateServer:312."),
    accepted(f"{G}:158 valid httpsRedirect",
             gateway(server(hosts="[bar.com]", port="{name: http, number: 80, protocol: http}",
                            extra="tls: {httpsRedirect: true}"))),
    accepted(f"{G}:171 httpsRedirect on an HTTPS server is only a warning",
             gateway(server(hosts="[bar.com]", port="{name: https, number: 80, protocol: https}",
                            extra="tls: {httpsRedirect: true, mode: SIMPLE, credentialName: bar-cert}")),
             note="Istio's HTTPS server has no certificate, which validateTLSOptions would refuse on its own "
                  "(validation.go:626-645); a credentialName is added so that the httpsRedirect warning is tested."),
    refused(f"{G}:184 invalid partial wildcard",
            gateway(server(hosts="['*bar.com']", port="{name: tls, number: 443, protocol: tls}",
                           extra="tls: {mode: ISTIO_MUTUAL}")), GW_REF, "spec.servers[0].hosts[0]"),
    refused(f"{S}:253 empty (host)", gateway("[{port: {number: 7, name: http, protocol: http}}]"), GW_REF,
            "spec.servers[0].hosts"),
    refused(f"{S}:254 empty (port)", gateway("[{hosts: [foo.bar.com]}]"), GW_REF, "spec.servers[0].port"),
    accepted(f"{S}:256 happy", gateway(server())),
    accepted(f"{S}:264 happy ip", gateway(server(hosts="['1.1.1.1']"))),
    accepted(f"{S}:272 happy ns/name", gateway(server(hosts="[ns1/foo.bar.com]"))),
    accepted(f"{S}:280 happy */name", gateway(server(hosts="['*/foo.bar.com']"))),
    accepted(f"{S}:288 happy ./name", gateway(server(hosts="[./foo.bar.com]"))),
    refused(f"{S}:296 invalid ~/name", gateway(server(hosts="['~/foo.bar.com']")), GW_REF, "spec.servers[0].hosts[0]"),
    refused(f"{S}:304 invalid domain ns/name format", gateway(server(hosts="['ns1/foo.*.bar.com']")), GW_REF,
            "spec.servers[0].hosts[0]"),
    refused(f"{S}:312 invalid domain", gateway(server(hosts="['foo.*.bar.com']")), GW_REF, "spec.servers[0].hosts[0]"),
    refused(f"{S}:320 invalid short name host", gateway(server(hosts="[foo]")), GW_REF, "spec.servers[0].hosts[0]"),
    refused(f"{S}:328 invalid port", gateway(server(port="{number: 66000, name: http, protocol: http}")), GW_REF,
            "spec.servers[0].port.number"),
    refused(f"{S}:336 invalid tls options", gateway(server(port="{number: 1, name: http, protocol: http}",
                                                          extra="tls: {mode: SIMPLE}")),
            GW_REF, "spec.servers[0].tls"),
    refused(f"{S}:345 no tls on HTTPS", gateway(server(port="{number: 10000, name: https, protocol: https}")), GW_REF,
            "spec.servers[0].tls"),
    refused(f"{S}:353 tls on HTTP", gateway(server(port="{number: 10000, name: http, protocol: http}",
                                                  extra="tls: {mode: SIMPLE}")), GW_REF, "spec.servers[0].tls"),
    accepted(f"{S}:362 tls redirect on HTTP", gateway(server(port="{number: 10000, name: http, protocol: http}",
                                                             extra="tls: {httpsRedirect: true}"))),
    accepted(f"{S}:373 bind ip", gateway(server(extra="bind: 127.0.0.1"))),
    refused(f"{S}:382 bind unix path with invalid port", gateway(server(extra="bind: 'unix://@foobar'")), GW_REF,
            "spec.servers[0].port.number"),
    refused(f"{S}:400 bind bad ip",
            gateway(server(port="{number: 7, name: http, protocol: http}", extra="bind: foo.bar")), GW_REF,
            "spec.servers[0].bind",
            note="Istio's port number is 0, allowed only with a unix bind; 7 is used so that the bind is what "
                 "is refused."),
    refused(f"{P}:425 empty (protocol)", gateway(server(port="{number: 7, name: http}")), GW_REF,
            "spec.servers[0].port.protocol"),
    refused(f"{P}:426 empty (name)", gateway(server(port="{number: 7, protocol: http}")), GW_REF,
            "spec.servers[0].port.name"),
    accepted(f"{P}:428 happy", gateway(server(port="{protocol: http, number: 1, name: Henry}"))),
    refused(f"{P}:438 invalid protocol", gateway(server(port="{protocol: kafka, number: 1, name: Henry}")), GW_REF,
            "spec.servers[0].port.protocol"),
    refused(f"{P}:448 invalid number", gateway(server(port="{protocol: http, number: 1073741824, name: http}")),
            GW_REF, "spec.servers[0].port.number"),
    refused(f"{P}:458 name, no number", gateway(server(port="{protocol: http, number: 0, name: Henry}")), GW_REF,
            "spec.servers[0].port.number"),
    accepted(f"{V}:2309 simple", vs(f"{{hosts: [foo.bar], {ROUTE}}}")),
    refused(f"{V}:2337 duplicate hosts", vs(f"{{hosts: ['*.foo.bar', '*.bar'], {ROUTE}}}"), VS_REF, "spec.hosts"),
    refused(f"{V}:2345 with no destination", vs("{hosts: [foo.bar], http: [{route: [{}]}]}"), VS_REF,
            "spec.http[0].route[0].destination.host",
            note="Istio's hosts overlap as well (*.foo.bar, *.bar); one host is used so that the route is tested."),
    refused(f"{V}:2351 destination without host", vs("{hosts: [foo.bar], http: [{route: [{destination: {}}]}]}"),
            VS_REF, "spec.http[0].route[0].destination.host"),
    accepted(f"{V}:2359 delegate with no hosts", vs(f"{{{ROUTE}}}")),
    refused(f"{V}:2367 bad host", vs(f"{{hosts: ['foo.ba!r'], {ROUTE}}}"), VS_REF, "spec.hosts[0]"),
    refused(f"{V}:2375 no tcp or http routing", vs("{hosts: [foo.bar]}"), VS_REF, "spec.http"),
    refused(f"{V}:2378 bad gateway", vs(f"{{hosts: [foo.bar], gateways: ['b@dgateway'], {ROUTE}}}"), VS_REF,
            "spec.gateways[0]"),
    accepted(f"{V}:2387 FQDN for gateway (a warning)", vs(f"{{hosts: [foo.bar], gateways: [gateway.example.com], "
                                                          f"{ROUTE}}}")),
    accepted(f"{V}:2396 namespace/name for gateway", vs(f"{{hosts: [foo.bar], gateways: [ns1/gateway], {ROUTE}}}")),
    refused(f"{V}:2405 namespace/* for gateway", vs(f"{{hosts: [foo.bar], gateways: ['ns1/*'], {ROUTE}}}"), VS_REF,
            "spec.gateways[0]"),
    refused(f"{V}:2414 */name for gateway", vs(f"{{hosts: [foo.bar], gateways: ['*/gateway'], {ROUTE}}}"), VS_REF,
            "spec.gateways[0]"),
    refused(f"{V}:2423 wildcard for mesh gateway", vs(f"{{hosts: ['*'], {ROUTE}}}"), VS_REF, "spec.hosts[0]"),
    accepted(f"{V}:2431 wildcard for non-mesh gateway", vs(f"{{hosts: ['*'], gateways: [somegateway], {ROUTE}}}")),
    refused(f"{D}:2847 missing destination name",
            dr("{host: '', subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}"),
            DR_REF, "spec.host"),
    refused(f"{D}:2855 missing subset name",
            dr("{host: reviews, subsets: [{name: '', labels: {version: v1}}, {name: v2, labels: {version: v2}}]}"),
            DR_REF, "spec.subsets[0].name"),
    refused(f"{D}:2863 duplicate subset names",
            dr("{host: reviews, subsets: [{name: foo, labels: {version: v1}}, {name: foo, labels: {version: v2}}]}"),
            DR_REF, "spec.subsets[1].name"),
    accepted(f"{D}:2830 simple destination rule",
             dr("{host: reviews, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validation_case(tmp_path, case):
    run_case(tmp_path, case)
