"""The TLS analyzers (graders/analyzers/gateway_tls.py): each fires on its trap and stays quiet on the
fixed configuration. Run through ``analyze -o json`` over the simulated lab cluster."""

from __future__ import annotations

from conformance.cli import analyze, findings
from conformance.networking import gateway, server, stream, virtual_service
from test_trace_tls import HOST, ROUTES, secret, simple, tls_vs

VS = virtual_service("vs", [HOST], ["gw"], ROUTES)


def only(result, code):
    found = findings(result, code)
    assert len(found) == 1, [f["message"] for f in result["findings"]]
    return found[0]


def test_credential_ignored_when_mode_is_omitted(tmp_path):
    f = only(analyze(tmp_path, stream(gateway("gw", simple(HOST, mode=None)), VS, secret("bookinfo-cert"))),
             "GW-TLS-CREDENTIAL-IGNORED")
    assert f["severity"] == "warning" and "omitted mode means PASSTHROUGH" in f["message"]
    assert "mode: SIMPLE" in f["hint"] and f["istio_code"] == "IST0133"


def test_credential_ignored_on_explicit_passthrough_and_on_plain_http(tmp_path):
    text = stream(gateway("gw", simple(HOST, mode="PASSTHROUGH"),
                          server(80, HOST, tls={"credentialName": "bookinfo-cert"})), VS)
    msgs = [f["message"] for f in findings(analyze(tmp_path, text), "GW-TLS-CREDENTIAL-IGNORED")]
    assert len(msgs) == 2 and any("tls.mode is PASSTHROUGH" in m for m in msgs)
    assert any("plain HTTP server never terminates TLS" in m for m in msgs)


def test_credential_not_ignored_with_simple(tmp_path):
    result = analyze(tmp_path, stream(gateway("gw", simple(HOST)), VS, secret("bookinfo-cert")))
    assert findings(result, "GW-TLS-CREDENTIAL-IGNORED") == []
    assert findings(result, "GW-TLS-SECRET-NOT-FOUND") == []


def test_secret_in_the_gateway_namespace_names_where_it_is_and_where_it_must_be(tmp_path):
    f = only(analyze(tmp_path, stream(gateway("gw", simple(HOST)), VS, secret("bookinfo-cert", "default"))),
             "GW-TLS-SECRET-NOT-FOUND")
    assert f["severity"] == "error" and f["istio_code"] == "IST0101"
    assert "Secret istio-system/bookinfo-cert" in f["message"] and "exists in default" in f["message"]
    assert "kubectl create -n istio-system secret tls bookinfo-cert" in f["hint"]


def test_secret_in_another_namespace_by_prefix_is_denied(tmp_path):
    text = stream(gateway("gw", simple(HOST, credential="default/bookinfo-cert")), VS,
                  secret("bookinfo-cert", "default"))
    f = only(analyze(tmp_path, text), "GW-TLS-SECRET-NOT-FOUND")
    assert f["severity"] == "error" and "unauthorized certificates" in f["message"]


def test_secret_existence_unknown_is_info_cannot_verify(tmp_path):
    f = only(analyze(tmp_path, stream(gateway("gw", simple(HOST)), VS)), "GW-TLS-SECRET-NOT-FOUND")
    assert f["severity"] == "info" and "Cannot verify" in f["message"]


def test_mutual_without_any_ca(tmp_path):
    text = stream(gateway("gw", simple(HOST, mode="MUTUAL")), VS, secret("bookinfo-cert"))
    f = only(analyze(tmp_path, text), "GW-TLS-MUTUAL-NO-CA")
    assert f["severity"] == "info" and "istio-system/bookinfo-cert-cacert" in f["message"]
    no_cred = server(443, HOST, protocol="HTTPS", name="https", tls={"mode": "MUTUAL", "serverCertificate": "/c",
                                                                       "privateKey": "/k"})
    # Without a credentialName, istiod's webhook refuses MUTUAL without caCertificates
    # (pkg/config/validation/validation.go validateTLSOptions): the object never reaches the gateway.
    result = analyze(tmp_path, stream(gateway("gw", no_cred), VS))
    assert findings(result, "GW-TLS-MUTUAL-NO-CA") == []
    invalid = only(result, "MANIFEST-INVALID")
    assert "tls.caCertificates" in invalid["message"] and "is required for mode MUTUAL" in invalid["message"]


def test_mutual_with_a_cacert_secret_or_ca_field_is_quiet(tmp_path):
    text = stream(gateway("gw", simple(HOST, mode="MUTUAL")), VS, secret("bookinfo-cert"),
                  secret("bookinfo-cert-cacert"))
    assert findings(analyze(tmp_path, text), "GW-TLS-MUTUAL-NO-CA") == []
    with_ca = server(443, HOST, protocol="HTTPS", name="https",
                     tls={"mode": "MUTUAL", "credentialName": "bookinfo-cert", "caCertificates": "/etc/ca.pem"})
    assert findings(analyze(tmp_path, stream(gateway("gw", with_ca), VS, secret("bookinfo-cert"))),
                    "GW-TLS-MUTUAL-NO-CA") == []


def test_duplicate_host_inside_one_gateway_drops_the_later_server(tmp_path):
    text = stream(gateway("gw", simple(HOST, name="a"), simple(HOST, "shop.example.com", name="b")), VS,
                  secret("bookinfo-cert"))
    f = only(analyze(tmp_path, text), "GW-CONFLICT")
    assert "skipping server on gateway default/gw, duplicate host names: [bookinfo.example.com]" in f["message"]
    assert "shop.example.com" in f["message"]


def test_duplicate_host_across_gateways_is_one_finding_with_the_log_line(tmp_path):
    text = stream(gateway("a", simple(HOST), created=1), gateway("b", simple(HOST), created=2), secret("bookinfo-cert"))
    f = only(analyze(tmp_path, text), "GW-CONFLICT")
    assert "drops the newer one of default/b" in f["message"] and "duplicate host names" in f["message"]


def test_namespace_prefixed_duplicates_make_envoy_reject_the_listener(tmp_path):
    same_gw = stream(gateway("gw", simple(HOST, name="a"), simple(f"./{HOST}", name="b")), secret("bookinfo-cert"))
    f = only(analyze(tmp_path, same_gw), "GW-CONFLICT")
    assert "rejects the whole listener" in f["message"]
    two_gw = stream(gateway("a", simple(f"default/{HOST}"), created=1),
                    gateway("b", simple(f"test/{HOST}"), ns="test", created=2), secret("bookinfo-cert"))
    f = only(analyze(tmp_path, two_gw), "GW-CONFLICT")
    assert "rejects the whole listener" in f["message"] and "dropped" not in f["message"]


def test_passthrough_sni_equal_to_a_terminating_host_rejects_the_listener(tmp_path):
    text = stream(gateway("gw", simple(HOST, name="term"),
                          server(443, "*.example.com", protocol="TLS", name="pt", tls={"mode": "PASSTHROUGH"})),
                  tls_vs("pt", ["*.example.com"], [HOST], "productpage"), secret("bookinfo-cert"))
    f = only(analyze(tmp_path, text), "GW-CONFLICT")
    assert "passthrough chain" in f["message"] and "https chain" in f["message"]


def test_distinct_tls_hosts_are_quiet(tmp_path):
    text = stream(gateway("gw", simple(HOST, name="a"), simple("shop.example.com", name="b")), VS,
                  secret("bookinfo-cert"))
    assert findings(analyze(tmp_path, text), "GW-CONFLICT") == []


def test_kubernetes_scheme_credential_in_the_wrong_namespace(tmp_path):
    text = stream(gateway("gw", simple(HOST, credential="kubernetes://bookinfo-cert")), VS,
                  secret("bookinfo-cert", "default"))
    f = only(analyze(tmp_path, text), "GW-TLS-SECRET-NOT-FOUND")
    assert "Secret istio-system/bookinfo-cert." in f["message"] and "exists in default" in f["message"]
    text = stream(gateway("gw", simple(HOST, credential="kubernetes://default/bookinfo-cert")), VS,
                  secret("bookinfo-cert", "default"))
    f = only(analyze(tmp_path, text), "GW-TLS-SECRET-NOT-FOUND")
    assert "another namespace (default)" in f["message"] and "bare name 'bookinfo-cert'" in f["hint"]


def test_mutual_ca_credential_without_the_cacert_suffix_is_read_as_a_certificate(tmp_path):
    def mutual(ca: str) -> dict:
        return server(443, HOST, protocol="HTTPS", name="https",
                      tls={"mode": "MUTUAL", "credentialName": "bookinfo-cert", "caCertCredentialName": ca})

    f = only(analyze(tmp_path, stream(gateway("gw", mutual("client-ca")), VS, secret("bookinfo-cert"))),
             "GW-TLS-MUTUAL-NO-CA")
    assert f["severity"] == "warning" and "does not end in -cacert" in f["message"]
    assert findings(analyze(tmp_path, stream(gateway("gw", mutual("client-ca-cacert")), VS, secret("bookinfo-cert"))),
                    "GW-TLS-MUTUAL-NO-CA") == []


def test_hosts_differing_only_in_case_slip_past_and_clash(tmp_path):
    """Validation accepts upper-case labels (dns1123LabelFmt [a-zA-Z0-9], pkg/config/labels/instance.go:30 at
    1.30.3) and the duplicate check compares exact strings, so both servers stay; their SNI names clash."""
    text = stream(gateway("gw", simple(HOST, name="a"), simple(HOST.upper(), name="b")), secret("bookinfo-cert"))
    f = only(analyze(tmp_path, text), "GW-CONFLICT")
    assert "rejects the whole listener" in f["message"]
