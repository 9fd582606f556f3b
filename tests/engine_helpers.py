"""Small builders for engine tests: realistic YAML laid over the simulated lab cluster."""

from __future__ import annotations

import textwrap
from pathlib import Path

from graders.analyzers import analyze
from graders.sources import load_state
from graders.state import State


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def state_of(tmp: Path, text: str, *, baseline: bool = True) -> State:
    return load_state([write(tmp, "learner.yaml", text)], baseline=baseline)


def codes(state: State) -> list[str]:
    return [f.code for f in analyze(state)]


def only(state: State, code: str):
    found = [f for f in analyze(state) if f.code == code]
    assert len(found) == 1, f"expected one {code}, got {[(f.code, f.resources) for f in analyze(state)]}"
    return found[0]


GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {ns}{ts}}}
spec:
  selector: {{istio: {selector}}}
  servers:
  - port: {{number: {port}, name: {pname}, protocol: {protocol}}}
    hosts: [{hosts}]{tls}
"""


def gateway(name: str = "bookinfo-gateway", ns: str = "default", port: int = 8080, hosts: str = '"*"',
            selector: str = "ingressgateway", protocol: str = "HTTP", created: str | None = None) -> str:
    tls = "\n    tls: {mode: SIMPLE, credentialName: bookinfo-cert}" if protocol == "HTTPS" else ""
    ts = f", creationTimestamp: '{created}'" if created else ""
    return GATEWAY.format(name=name, ns=ns, port=port, hosts=hosts, selector=selector, protocol=protocol,
                          pname=protocol.lower(), tls=tls, ts=ts)


def virtual_service(name: str = "bookinfo", ns: str = "default", gateways: str = "bookinfo-gateway",
                    hosts: str = '"*"', dest: str = "productpage", port: int | None = 9080,
                    created: str | None = None) -> str:
    port_line = f"\n        port: {{number: {port}}}" if port else ""
    ts = f", creationTimestamp: '{created}'" if created else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {ns}{ts}}}
spec:
  hosts: [{hosts}]
  gateways: [{gateways}]
  http:
  - match:
    - uri: {{exact: /productpage}}
    - uri: {{prefix: /static}}
    - uri: {{exact: /login}}
    - uri: {{exact: /logout}}
    - uri: {{prefix: /api/v1/products}}
    route:
    - destination:
        host: {dest}{port_line}
"""


def docs(*parts: str) -> str:
    return "\n---\n".join(p.strip("\n") for p in parts) + "\n"


def productpage_in(ns: str) -> str:
    """A second copy of Bookinfo's productpage (Service + Deployment), as lab 3 installs in ``test``."""
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: productpage, namespace: {ns}, labels: {{app: productpage}}}}
spec:
  selector: {{app: productpage}}
  ports: [{{name: http, port: 9080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: productpage-v1, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: productpage, version: v1}}}}
  template:
    metadata: {{labels: {{app: productpage, version: v1}}}}
    spec:
      containers:
      - {{name: productpage, image: registry.istio.io/release/examples-bookinfo-productpage-v1:1.20.3,
         ports: [{{containerPort: 9080}}]}}
"""


PRODUCTPAGE_TWO_PORTS = """
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: default}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080}, {name: metrics, port: 9090}]
"""


def course_operator(extra_ports: str = "", *, run_as_root: bool = False, outbound: str | None = None) -> str:
    """The course's IstioOperator with changes a learner might make (extra gateway Service ports,
    runAsRoot, outbound traffic policy)."""
    values = "\n  values: {gateways: {istio-ingressgateway: {runAsRoot: true}}}" if run_as_root else ""
    mesh = f"\n  meshConfig: {{outboundTrafficPolicy: {{mode: {outbound}}}}}" if outbound else ""
    return f"""
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {{name: istio-lab}}
spec:
  profile: demo{values}{mesh}
  components:
    ingressGateways:
    - name: istio-ingressgateway
      enabled: true
      k8s:
        service:
          type: NodePort
          ports:
          - {{name: status-port, port: 15021, targetPort: 15021, nodePort: 30021}}
          - {{name: http2, port: 80, targetPort: 8080, nodePort: 30080}}
{extra_ports}
"""


def productpage_deployment(replicas: int, status: str = "") -> str:
    """Bookinfo's productpage-v1 Deployment with a chosen replica count (0: no ready pod)."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: productpage-v1, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: productpage, version: v1}}}}
  template:
    metadata: {{labels: {{app: productpage, version: v1}}}}
    spec: {{containers: [{{name: productpage, args: [x], ports: [{{containerPort: 9080}}]}}]}}
{status}"""


def rule_in_test_namespace(http: str) -> str:
    """A VirtualService in ``test`` bound to test/bookinfo-gateway with the given http rules."""
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: everything, namespace: test}}
spec:
  hosts: ["*"]
  gateways: [test/bookinfo-gateway]
  http:
{http}"""


HTTPBIN_SERVICE_ENTRY = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  location: MESH_EXTERNAL
"""


def vs_with_rules(*rules: str) -> str:
    """VirtualService default/bookinfo bound to bookinfo-gateway, with these http rules (each a YAML
    flow mapping such as ``{match: [...], route: [...]}``)."""
    http = "\n".join(f"  - {r}" for r in rules)
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: bookinfo}}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
{http}
"""


def route_to(service: str) -> str:
    return f"route: [{{destination: {{host: {service}, port: {{number: 9080}}}}}}]"
