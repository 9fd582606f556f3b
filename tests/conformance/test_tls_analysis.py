"""Conformance: istioctl's gateway Secret analyzer, translated from Istio 1.30.3
(pkg/config/analysis/analyzers/analyzers_test.go, case "gatewaySecret" at line 226, data
testdata/gateway-secrets.yaml), as the course's GW-TLS-SECRET-NOT-FOUND (IST0101's counterpart).

Istio's analyzer reads the Secret's data; the course reads only its name and namespace (the Secret
objects here carry no data). Istio's expectation per Gateway becomes a finding naming that Gateway,
or no finding. The custom gateway runs in its own namespace ``custom``, which is what makes
``customgateway-wrongnamespace`` wrong: its Secret is in istio-system. ``defaultgateway-nocredential``
(SIMPLE without any certificate) is left out: admission rejects it ("SIMPLE TLS requires a server
certificate", pkg/config/validation/validation.go), so it never reaches a cluster.
"""

from __future__ import annotations

from typing import Any

import pytest
from cli import analyze, findings
from networking import gateway, meta, server, stream

AN = "analyzers_test.go:226 gatewaySecret"


def secret(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta(name, ns), "type": "Opaque"}


def custom_gateway_workload() -> dict[str, Any]:
    labels = {"istio": "custom-gateway"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("custom-gateway", "custom"),
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "istio-proxy", "image": "istio/proxyv2:1.30.3",
                                                           "ports": [{"containerPort": 8443}]}]}}}}


def https_gateway(name: str, selector: str, credential: str | None) -> dict[str, Any]:
    tls: dict[str, Any] = {"mode": "SIMPLE"}
    if credential is not None:
        tls["credentialName"] = credential
    return gateway(name, server(443, "httpbin.example.com", protocol="HTTPS", name="https", tls=tls),
                   selector=selector)


OBJECTS = stream(
    secret("httpbin-credential", "istio-system"), custom_gateway_workload(),
    https_gateway("defaultgateway-noerrors", "ingressgateway", "httpbin-credential"),
    https_gateway("defaultgateway-boguscredentialname", "ingressgateway", "httpbin-credential-bogus"),
    https_gateway("customgateway-wrongnamespace", "custom-gateway", "httpbin-credential"),
    https_gateway("bogusgateway", "no-such-gateway", "httpbin-credential"),
)


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict[str, Any]:
    return analyze(tmp_path_factory.mktemp("tls-analysis"), OBJECTS)


def _secret_findings(result: dict[str, Any], gw: str) -> list[dict[str, Any]]:
    return [f for f in findings(result, "GW-TLS-SECRET-NOT-FOUND") if f"Gateway default/{gw}" in f["resources"]]


def test_correct_credential_in_the_pod_namespace_is_quiet(result):
    """AN: defaultgateway-noerrors gets no message."""
    assert _secret_findings(result, "defaultgateway-noerrors") == []


def test_bogus_credential_name_is_not_found(result):
    """AN: ReferencedResourceNotFound for defaultgateway-bogusCredentialName."""
    (f,) = _secret_findings(result, "defaultgateway-boguscredentialname")
    assert f["severity"] == "error" and f["istio_code"] == "IST0101"
    assert "Secret istio-system/httpbin-credential-bogus" in f["message"]


def test_credential_in_another_namespace_than_the_custom_gateway_pod(result):
    """AN: ReferencedResourceNotFound for customgateway-wrongnamespace (its pod runs in `custom`)."""
    (f,) = _secret_findings(result, "customgateway-wrongnamespace")
    assert "Secret custom/httpbin-credential" in f["message"] and "exists in istio-system" in f["message"]


def test_gateway_selecting_no_pod_is_reported_by_its_selector(result):
    """AN: ReferencedResourceNotFound for bogusgateway (Istio: 'Referenced selector not found'); here the
    selector finding, and no Secret finding since no pod means no namespace to look in."""
    assert _secret_findings(result, "bogusgateway") == []
    assert any("Gateway default/bogusgateway" in f["resources"] for f in findings(result, "GW-SELECTOR-NO-WORKLOAD"))
