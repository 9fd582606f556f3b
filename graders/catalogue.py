"""Every message a finding can carry, in one place, under a stable code.

Tests, lab checks, the book's reference page and instructors' tooling refer to these codes, so a
code never changes meaning. Templates speak to a learner: what is wrong, the mechanism behind it,
and the fix. ``istio_code`` / ``kiali_code`` name the closest equivalent in istioctl analyze and
Kiali (or None) so learners can connect what they see here with those tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Message:
    code: str
    severity: str
    title: str
    template: str
    hint: str
    istio_code: str | None = None
    kiali_code: str | None = None


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    message: str
    hint: str
    resources: tuple[str, ...]
    istio_code: str | None = None
    kiali_code: str | None = None
    origin: str = ""  # file:line when the object came from a file
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        out = {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
            "resources": list(self.resources),
            "istio_code": self.istio_code,
            "kiali_code": self.kiali_code,
        }
        if self.origin:
            out["origin"] = self.origin
        if "reason" in self.details:  # h10-gwapi: istiod's condition reason, as it spells it
            out["reason"] = self.details["reason"]
        return out


_MESSAGES = (
    Message(
        "ISTIO-NOT-INSTALLED", "error", "Istio is not installed",
        "{where} has no Istio networking CRDs (networking.istio.io), so Gateways and "
        "VirtualServices cannot exist there and no ingress gateway is programmed.",
        "Install Istio first: `python -m graders cluster up` creates the course cluster, or run "
        "`istioctl install -f labs/cluster/istio-operator.yaml -y` on your own cluster.",
    ),
    Message(
        "MANIFEST-INVALID", "error", "Not a valid Kubernetes object",
        "{where}: {problem}. The object was left out of the analysis; everything else was analyzed.",
        "{fix}",
    ),
    Message(
        "GW-SELECTOR-NO-WORKLOAD", "error", "Gateway selects no gateway pod",
        "Gateway {gateway} selects pods labelled {selector}, but no pod in any namespace carries "
        "those labels. A Gateway is only configuration for the Envoy pods its selector matches; "
        "with no match, no Envoy opens a listener for it and clients get connection refused.",
        "Set spec.selector to the labels of a running gateway pod: {available}. (Helm's istio/gateway "
        "chart labels its pods istio=<release name without 'istio-'>, e.g. istio=ingress; istioctl's "
        "default gateway uses istio=ingressgateway.)",
        "IST0101", "KIA0302",
    ),
    Message(
        "GW-PORT-NOT-ON-SERVICE", "error", "Gateway port is not reachable through the gateway Service",
        "Gateway {gateway} server port {port} matches neither a port nor a targetPort of any Service "
        "that selects its pods ({services}). {listener_note}",
        "Use a port the gateway Service already exposes ({ports}: Envoy listens on the targetPort, "
        "so 80 and 8080 mean the same listener on the default gateway), or add a port to the gateway "
        "Service (for the istioctl-installed gateway: components.ingressGateways[].k8s.service.ports "
        "in the IstioOperator) with a targetPort of 1024 or above.",
        "IST0162", None,
    ),
    Message(
        "GW-PORT-PRIVILEGED", "error", "Gateway port resolves to a privileged listener",
        "Gateway {gateway} server port {port} resolves to listener port {listener} on {workload}, "
        "which runs unprivileged (ISTIO_META_UNPRIVILEGED_POD=true, user 1337). istiod skips "
        "listener ports below 1024 on such pods, so the server is silently dropped and clients "
        "get connection refused.",
        "Use a Service port whose targetPort is 1024 or higher (80->8080 and 443->8443 on the default "
        "gateway), or map the new port in the gateway Service to a high targetPort (for example "
        "{port}->{suggest}).",
    ),
    Message(
        "GW-CONFLICT", "error", "Two Gateways program the same listener and hosts",
        "Gateways {winner} and {loser} both program {workload} on listener port {listener} "
        "(declared as {winner_port} and {loser_port}) with {overlap}{bind}. {effect}",
        "Give each Gateway distinct hosts (and send the matching Host header), put the hosts in one "
        "Gateway, move one of them to another port that the gateway Service exposes, or select a "
        "separate gateway workload with its own labels.",
        "IST0145", "KIA0301",
    ),
    Message(
        "GW-SHARED-WORKLOAD", "warning", "Gateway selector matches several gateway deployments",
        "Gateway {gateway} selects {selector}, which matches pods of {count} deployments: "
        "{workloads}. Every one of them gets this Gateway's listeners. This usually means a second "
        "gateway kept the inherited label istio=ingressgateway.",
        "Give each gateway deployment its own labels (override both app and istio in the "
        "IstioOperator `label` field, or use a distinct Helm release name) and select only the one "
        "this Gateway is meant for.",
    ),
    Message(
        "GW-NOT-EXTERNALLY-REACHABLE", "warning", "Gateway workload has no external Service",
        "Gateway {gateway} runs on {workload}, which is exposed only by ClusterIP Services "
        "({services}). Nothing outside the cluster can reach it: a ClusterIP has no node port and no "
        "external IP.{egress}",
        "For ingress, select the ingress gateway (istio: ingressgateway), whose Service is NodePort "
        "on the course cluster. Egress gateways are meant to be reached from inside the mesh only.",
    ),
    Message(
        "VS-GATEWAY-NOT-FOUND", "error", "VirtualService references a missing Gateway",
        "VirtualService {vs} lists gateway '{ref}', which resolves to {resolved}{how}, and no such "
        "Gateway exists, so the routes are not attached to any gateway.",
        "{suggestion}",
        "IST0101", "KIA1102",
    ),
    Message(
        "VS-HOST-NOT-IN-GATEWAY", "warning", "VirtualService hosts do not match its Gateway",
        "VirtualService {vs} is bound to Gateway {gateway}, but none of its hosts {vs_hosts} matches "
        "a host the Gateway accepts for it ({gw_hosts}). The gateway builds routes only for the "
        "intersection of the two, so these routes never receive traffic (clients get 404).",
        "{fix}",
        "IST0132", None,
    ),
    Message(
        "VS-DESTINATION-NOT-FOUND", "error", "Route destination host does not exist",
        "VirtualService {vs} routes to '{host}', which resolves to {resolved}; there is no such "
        "Service or ServiceEntry. istiod keeps the route pointing at a cluster that does not exist, "
        "so requests get 503 with response flag NC (cluster_not_found).",
        "{suggestion}",
        "IST0101", "KIA1101",
    ),
    Message(
        "VS-DESTINATION-PORT-MISMATCH", "error", "Route destination port is not a Service port",
        "VirtualService {vs} routes to {service} {problem}. istiod builds the upstream cluster name "
        "from that port; no such cluster exists, so requests get 503 NC (cluster_not_found).",
        "Set route.destination.port.number to a port of Service {service}: {ports}. Use the Service "
        "port, not the container's targetPort.",
        "IST0112", None,
    ),
    Message(
        "VS-RULE-UNREACHABLE", "warning", "VirtualService rule never receives a request",
        "VirtualService {vs}: {rules} {verb} after {catch_all}, which {takes}. Envoy sends a request to the "
        "first route that matches, and istiod keeps one VirtualService's rules in the order written{mechanism}.",
        "Reorder spec.http so that every rule can match: {fix}",
        "IST0130", None,
    ),
    Message(
        "SVC-NO-READY-ENDPOINTS", "warning", "Routed-to Service has no ready pod",
        "VirtualService {vs} routes to Service {service}{subset}, which selects no ready pod{why}. "
        "Envoy has the cluster but no healthy endpoint, so requests get 503 'no healthy upstream' "
        "(flag UH).",
        "Check the pods: `kubectl get pods -n {namespace} -l {selector}` and `kubectl describe` any "
        "that are not Ready; compare the Service selector with the pod labels.",
    ),
    # --- h1-routing (issue #10) ---
    Message(
        "GW-PORT-RESERVED", "error", "Gateway port is one of Istio's reserved proxy ports",
        "Gateway {gateway} server port {port} resolves to listener port {listener} on {workload}, a port "
        "Istio reserves for the proxy itself: {effect}",
        "Use a port outside Istio's reserved range 15000-15090 that the gateway Service forwards (80->8080 or "
        "443->8443 on the default gateway), and keep the status port 15021 for health checks only.",
    ),
    Message(
        "VS-DESTINATION-NOT-EXPORTED", "error", "Route destination is not exported to the gateway's namespace",
        "VirtualService {vs} routes through Gateway {gateway} to {target}, which is exported only to {export}. "
        "The gateway pods run in {proxy_ns}, and istiod gives a gateway only the services exported to its own "
        "namespace, so Envoy on {workload} has no cluster {cluster}: requests get 503 with an empty body "
        "(flag NC).",
        "Add {proxy_ns} to {where} (or remove it to export to every namespace).",
    ),
    # --- h2-input (issue #10) ---
    Message(
        "VS-SUBSET-NOT-FOUND", "error", "Route destination subset is not defined",
        "VirtualService {vs} routes to {host} subset '{subset}', but no DestinationRule for that host defines "
        "a subset named '{subset}'. istiod builds a cluster only for each defined subset, so the route points at "
        "{cluster}, which does not exist: requests get 503 with response flag NC (cluster_not_found).",
        "Define the subset or route to one that exists: {fix}",
        "IST0101", None,
    ),
    # --- h9-tls (issue #14) ---
    Message(
        "GW-TLS-CREDENTIAL-IGNORED", "warning", "Certificate on a server that does not terminate TLS",
        "Server {server} of Gateway {gateway} ({protocol}, tls.mode {mode}) names certificate {credential}, but "
        "{why} istiod ignores the certificate: no TLS is terminated there{consequence}",
        "{fix}",
        "IST0133", None,
    ),
    Message(
        "GW-TLS-SECRET-NOT-FOUND", "error", "The certificate's Secret is not where the gateway looks",
        "Server {server} of Gateway {gateway} terminates TLS with credentialName '{credential}'. istiod looks for "
        "it in the namespace of the gateway pod ({workload}): Secret {pod_ns}/{name}. {problem}",
        "{fix}",
        "IST0101", None,
    ),
    Message(
        "GW-TLS-MUTUAL-NO-CA", "warning", "MUTUAL TLS without a client CA",
        "Server {server} of Gateway {gateway} has tls.mode {mode}, which needs a CA to check client "
        "certificates. {problem}",
        "{fix}",
        None, None,
    ),
    # --- h10-gwapi (issue #15) ---
    Message(
        "GWAPI-ROUTE-NOT-ACCEPTED", "error", "HTTPRoute is not attached to its parent Gateway",
        "HTTPRoute {route} parentRef {parent}: istiod sets Accepted=False, reason {reason}: {detail}. The route "
        "adds nothing to that Gateway, so its requests get 404 unless another route matches.",
        "{fix}",
        "IST0171", "KIA1401",
    ),
    Message(
        "GWAPI-BACKEND-UNRESOLVED", "error", "HTTPRoute backend cannot be resolved",
        "HTTPRoute {route}: istiod sets ResolvedRefs=False, reason {reason}: {detail}. {effect}",
        "{fix}",
        "IST0171", "KIA1402",
    ),
    Message(
        "GWAPI-NOT-PROGRAMMED", "warning", "Gateway API Gateway is not Programmed",
        "Gateway {gateway}: istiod sets Programmed=False, reason {reason}: {detail}. {effect}",
        "{fix}",
        "IST0171", None,
    ),
    Message(
        "GWAPI-CLASS-UNKNOWN", "error", "Gateway names a class no controller here serves",
        "Gateway {gateway} has gatewayClassName '{class_name}', which {why}. istiod ignores it: no Deployment, no "
        "Service, and the status stays Accepted=Unknown, reason Pending ('Waiting for controller').",
        "Use gatewayClassName: istio (istiod serves it even without a GatewayClass object){known}.",
        None, "KIA1504",
    ),
    Message(
        "GWAPI-CRDS-MISSING", "error", "Gateway API CRDs are not installed",
        "{where} does not serve the gateway.networking.k8s.io API, so {objects} cannot be created there (kubectl "
        "answers 'no matches for kind'). Istio does not ship these CRDs.",
        "Install the Gateway API CRDs Istio 1.30 is built against: `kubectl apply --server-side -f "
        "https://github.com/kubernetes-sigs/gateway-api/releases/download/{version}/standard-install.yaml`.",
    ),
    Message(
        "GWAPI-SHARED-PODS", "warning", "Classic Gateway selects the pods of a Gateway API gateway",
        "Istio Gateway {gateway} selects {selector}, which matches the pods istiod deploys for Gateway API Gateway "
        "{api_gateway}. Its servers merge into that Envoy beside the Gateway API listeners (Istio 1.30 has no guard "
        "against this), so both APIs program one proxy.",
        "Select the classic ingress gateway's own labels (istio: ingressgateway), or express the routing as an "
        "HTTPRoute attached to {api_gateway}; do not select gateway.networking.k8s.io/* labels.",
    ),
    Message(
        "GWAPI-DEPLOYMENT-DIFFERS", "warning", "The gateway Service differs from what istiod would create",
        "Service {service} of Gateway {gateway} differs from what istiod renders for it: {diffs}. {why}",
        "{fix}",
    ),
)

CATALOGUE: dict[str, Message] = {m.code: m for m in _MESSAGES}
# Codes produced while loading objects rather than by an analyzer.
LOAD_CODES = ("MANIFEST-INVALID",)


def finding(code: str, resources: list[str] | tuple[str, ...], origin: str = "", **params: Any) -> Finding:
    """Build a finding from the catalogue; the hint template may use the same parameters."""
    msg = CATALOGUE[code]
    return Finding(
        code=code,
        severity=params.pop("severity", msg.severity),
        message=msg.template.format(**params),
        hint=msg.hint.format(**params),
        resources=tuple(resources),
        istio_code=params.pop("istio_code", msg.istio_code),
        kiali_code=msg.kiali_code,
        origin=origin,
        details=params,
    )


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_RANK[f.severity], f.code, f.resources, f.message))
