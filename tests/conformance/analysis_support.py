"""Shared shape of the analyzer conformance cases (``test_analysis_*.py``).

A case is one expectation of Istio 1.30.3's analyzer suite (``pkg/config/analysis/analyzers/
analyzers_test.go`` and its ``testdata/``), translated into the course's own YAML and run through
``python -m graders analyze --no-baseline -o json`` (``cli.py``). Its id names the Istio test, the
line of its entry in analyzers_test.go and the testdata file and line of the object it is about.
The expectation is an observable: a finding code and the object its ``resources`` name, or the
absence of that finding.

istioctl's tests run with its default resources (``AddDefaultResources``,
pkg/config/analysis/local/istiod_analyze.go:469, template in local/defaults.go): an ingress gateway
pod labelled ``istio: ingressgateway`` in istio-system and its Service (80, 443, 31400, 15443).
``ISTIOCTL_DEFAULTS`` is that pair in this suite's words; it is added where the Istio case relies on
it (its nodePorts make it a NodePort Service here, so the engine's reachability note stays quiet).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cli import analyze

ISTIOCTL_DEFAULTS = """
apiVersion: v1
kind: Pod
metadata: {name: istio-ingressgateway-dummypod, namespace: istio-system, labels: {istio: ingressgateway}}
spec: {containers: [{name: istio-proxy, args: [proxy, router]}]}
---
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  type: NodePort
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 80, nodePort: 31380}
  - {name: https, port: 443, targetPort: 443, nodePort: 31390}
  - {name: tcp, port: 31400, targetPort: 31400, nodePort: 31400}
  - {name: tls, port: 15443, targetPort: 15443, nodePort: 31447}
"""


@dataclass(frozen=True)
class Case:
    """``found``: (code, resource) pairs some finding must carry; ``absent``: (code, resource or
    None for any object) pairs no finding may carry; ``says``: (code, text) a finding's message must
    contain. ``note`` says where and why the case departs from istioctl, citing the istiod code the
    engine follows instead."""

    id: str
    yaml: str
    found: tuple[tuple[str, str], ...] = ()
    absent: tuple[tuple[str, str | None], ...] = ()
    says: tuple[tuple[str, str], ...] = ()
    defaults: bool = True
    note: str = ""


def run_case(tmp: Path, case: Case) -> None:
    text = (ISTIOCTL_DEFAULTS + "\n---\n" if case.defaults else "") + case.yaml
    result = analyze(tmp, text, baseline=False)
    findings = [(f["code"], tuple(f["resources"]), f["message"]) for f in result["findings"]]
    shown = [(c, r) for c, r, _ in findings]
    for code, resource in case.found:
        assert any(c == code and resource in r for c, r, _ in findings), f"expected {code} on {resource}: {shown}"
    for code, resource in case.absent:
        hits = [r for c, r, _ in findings if c == code and (resource is None or resource in r)]
        assert not hits, f"expected no {code} on {resource or 'any object'}: {shown}"
    for code, text in case.says:
        assert any(c == code and text in m for c, _, m in findings), f"expected {code} saying {text!r}: {findings}"
    assert case.found or case.absent, "a case must state an observable"
    if not any(code == "MANIFEST-INVALID" for code, _ in case.found):
        # an absent finding proves nothing about an object that was never loaded
        invalid = [m for c, _, m in findings if c == "MANIFEST-INVALID"]
        assert not invalid, f"the case's YAML is not all valid: {invalid}"
