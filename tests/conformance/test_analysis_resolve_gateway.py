"""TestResolveGatewayName (pilot/pkg/model/virtualservice_test.go:1341, table gatewayNameTests at
:1304-1339), Istio 1.30.3: how istiod turns a VirtualService's ``spec.gateways`` entry into
``namespace/name`` (resolveGatewayName, pilot/pkg/model/config.go:233-261).

Observable for each row: with a Gateway at the resolved name the VirtualService binds (no
VS-GATEWAY-NOT-FOUND, although a decoy Gateway of the same name sits in the VirtualService's own
namespace when that differs); without it, VS-GATEWAY-NOT-FOUND says which Gateway the reference
resolved to.
"""

from __future__ import annotations

import pytest
from analysis_support import Case, run_case


def _gw(name: str, ns: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            "spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, "
            "hosts: ['*']}]}\n")


def _vs(ns: str, ref: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: web, namespace: {ns}}}\n"
            f"spec: {{hosts: [web.example.com], gateways: ['{ref}'], "
            "http: [{directResponse: {status: 200}}]}\n")


ROWS = [  # (line in virtualservice_test.go, gateway as written, VirtualService namespace, resolved)
    (1315, "gateway", "default", "default/gateway"),
    (1320, "default/gateway", "foo", "default/gateway"),
    (1325, "gateway.default", "default", "default/gateway"),
    (1330, "gateway.default", "foo", "default/gateway"),
    (1335, "private.ingress.svc.cluster.local", "foo", "ingress/private"),
]
CASES = []
for line, ref, ns, resolved in ROWS:
    rns, rname = resolved.split("/")
    decoy = _gw(rname, ns) if ns != rns else ""
    CASES.append(Case(f"TestResolveGatewayName virtualservice_test.go:{line} {ref!r} in {ns} -> {resolved} (bound)",
                      "---\n".join(p for p in (_gw(rname, rns), decoy, _vs(ns, ref)) if p),
                      absent=(("VS-GATEWAY-NOT-FOUND", None),)))
    CASES.append(Case(f"TestResolveGatewayName virtualservice_test.go:{line} {ref!r} in {ns} -> {resolved} (missing)",
                      "---\n".join(p for p in (decoy, _vs(ns, ref)) if p),
                      found=(("VS-GATEWAY-NOT-FOUND", f"VirtualService {ns}/web"),),
                      says=(("VS-GATEWAY-NOT-FOUND", f"resolves to Gateway {resolved}"),)))
CASES.append(Case(
    "TestResolveGatewayName virtualservice_test.go:1310 './gateway' in default -> default/gateway",
    _gw("gateway", "default") + "---\n" + _vs("default", "./gateway"),
    found=(("MANIFEST-INVALID", "VirtualService default/web"),), says=(("MANIFEST-INVALID", "'./' is not accepted"),),
    note="resolveGatewayName reads './gateway' as default/gateway, but istiod's validating webhook refuses the "
         "reference first ('.' is not a DNS label: validateGatewayNames, pkg/config/validation/validation.go:2397), "
         "so no such VirtualService is ever stored; the engine follows the webhook."))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve_gateway_name_case(tmp_path, case):
    run_case(tmp_path, case)
