"""trace --tls (issue #14): every outcome of the TLS step, through the command line, over the
simulated lab cluster (ingress gateway in istio-system, Service 80->8080 and 443->8443)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conformance.cli import _run, trace, write_case
from conformance.networking import dest, gateway, meta, prefix, rule, server, stream, virtual_service

HOST = "bookinfo.example.com"
ROUTES = [rule(dest("productpage", 9080), match=[prefix("/productpage")])]


def secret(name: str, ns: str = "istio-system") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta(name, ns), "type": "kubernetes.io/tls",
            "data": {"tls.crt": "Q0VSVElGSUNBVEU=", "tls.key": "UFJJVkFURUtFWQ=="}}


def simple(*hosts: str, credential: str = "bookinfo-cert", mode: str | None = "SIMPLE", name: str = "https",
           protocol: str = "HTTPS") -> dict[str, Any]:
    tls: dict[str, Any] = {"credentialName": credential}
    if mode:
        tls["mode"] = mode
    return server(443, *hosts, protocol=protocol, name=name, tls=tls)


def tls_vs(name: str, hosts: list[str], sni: list[str], target: str, port: int = 9080,
           gateways: tuple[str, ...] = ("gw",), ns: str = "default") -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta(name, ns),
            "spec": {"hosts": hosts, "gateways": list(gateways),
                     "tls": [{"match": [{"port": 443, "sniHosts": sni}], "route": [dest(target, port)]}]}}


BOOKINFO_HTTPS = stream(gateway("gw", simple(HOST)), virtual_service("vs", [HOST], ["gw"], ROUTES),
                        secret("bookinfo-cert"))


def run(tmp_path, text: str, **request: Any) -> dict[str, Any]:
    request.setdefault("port", 443)
    request.setdefault("host", HOST)
    request.setdefault("path", "/productpage")
    return trace(tmp_path, text, tls=True, **request)


def last(result: dict[str, Any]) -> str:
    return result["steps"][-1]["result"]


def test_https_with_its_secret_in_the_pod_namespace_routes_by_the_servers_own_table(tmp_path):
    r = run(tmp_path, BOOKINFO_HTTPS)
    assert (r["outcome"], r["http_status"], r["destination"]["service"]) == ("ok", None, "default/productpage")
    assert r["tls"] == {"sni": HOST, "server": "default/gw servers[0]", "mode": "SIMPLE",
                        "credential": {"name": "bookinfo-cert", "namespace": "istio-system", "status": "found"}}
    assert any("https.443.https.gw.default" in s["result"] for s in r["steps"])
    assert r["request"]["tls"] is True


def test_sni_that_no_server_names_fails_the_handshake(tmp_path):
    r = run(tmp_path, BOOKINFO_HTTPS, sni="other.example.com")
    assert (r["outcome"], r["http_status"], r["destination"]) == ("tls-handshake-failed", None, None)
    assert "None matches" in last(r) and r["tls"]["server"] is None


def test_no_sni_takes_only_a_match_all_chain(tmp_path):
    r = run(tmp_path, BOOKINFO_HTTPS, no_sni=True)
    assert r["outcome"] == "tls-handshake-failed" and r["tls"]["sni"] is None
    star = stream(gateway("gw", simple("*")), virtual_service("vs", ["*"], ["gw"], ROUTES), secret("bookinfo-cert"))
    r = run(tmp_path, star, no_sni=True)
    assert r["outcome"] == "ok" and "no server_names" in r["steps"][4]["result"]


def test_an_ip_address_sends_no_sni(tmp_path):
    r = run(tmp_path, BOOKINFO_HTTPS, host="127.0.0.1")
    assert r["outcome"] == "tls-handshake-failed" and r["tls"]["sni"] is None


def test_secret_in_the_gateway_namespace_instead_of_the_pods(tmp_path):
    text = stream(gateway("gw", simple(HOST)), virtual_service("vs", [HOST], ["gw"], ROUTES),
                  secret("bookinfo-cert", "default"))
    r = run(tmp_path, text)
    assert r["outcome"] == "tls-handshake-failed"
    assert r["tls"]["credential"] == {"name": "bookinfo-cert", "namespace": "istio-system", "status": "missing"}
    assert "exists in default" in last(r) and "istio-system" in last(r)


def test_credential_in_another_namespace_is_denied(tmp_path):
    text = stream(gateway("gw", simple(HOST, credential="default/bookinfo-cert")),
                  virtual_service("vs", [HOST], ["gw"], ROUTES), secret("bookinfo-cert", "default"))
    r = run(tmp_path, text)
    assert r["outcome"] == "tls-handshake-failed" and r["tls"]["credential"]["status"] == "denied"


def test_without_any_secret_listed_existence_is_not_guessed(tmp_path):
    text = stream(gateway("gw", simple(HOST)), virtual_service("vs", [HOST], ["gw"], ROUTES))
    r = run(tmp_path, text)
    step = next(s for s in r["steps"] if s["step"] == "tls-handshake")
    assert r["outcome"] == "ok" and step.get("uncertain") and "Cannot verify" in step["result"]
    assert r["tls"]["credential"]["status"] == "unknown"


def test_https_client_on_the_plain_http_port(tmp_path):
    text = stream(gateway("gw", server(80, HOST)), virtual_service("vs", [HOST], ["gw"], ROUTES))
    r = run(tmp_path, text, port=80)
    assert (r["outcome"], r["http_status"]) == ("tls-handshake-failed", None)
    assert "wrong version number" in last(r)


def test_plain_http_to_the_https_port_stays_connection_closed(tmp_path):
    r = trace(tmp_path, BOOKINFO_HTTPS, port=443, host=HOST, path="/productpage")
    assert r["outcome"] == "connection-closed" and "tls" not in r


def test_host_header_other_than_the_sni_gets_404_from_that_servers_table(tmp_path):
    text = stream(gateway("gw", simple(HOST, name="https-a"), simple("shop.example.com", name="https-b")),
                  virtual_service("vs", [HOST, "shop.example.com"], ["gw"], ROUTES), secret("bookinfo-cert"))
    r = run(tmp_path, text, host="shop.example.com", sni=HOST)
    assert (r["outcome"], r["http_status"]) == ("not-found", 404)


def test_passthrough_follows_the_tls_route_by_sni(tmp_path):
    text = stream(gateway("gw", server(443, HOST, protocol="TLS", tls={"mode": "PASSTHROUGH"})),
                  tls_vs("pt", [HOST], [HOST], "productpage"))
    r = run(tmp_path, text)
    assert (r["outcome"], r["destination"]["service"]) == ("ok", "default/productpage")
    assert r["tls"]["mode"] == "PASSTHROUGH" and r["tls"]["credential"] is None


def test_mode_omitted_with_only_http_routes_has_no_chain_and_no_listener(tmp_path):
    text = stream(gateway("gw", simple(HOST, mode=None)), virtual_service("vs", [HOST], ["gw"], ROUTES),
                  secret("bookinfo-cert"))
    r = run(tmp_path, text)
    assert r["outcome"] == "connection-refused"
    assert any("omitted, so PASSTHROUGH" in s["result"] for s in r["steps"])


def test_mode_omitted_beside_a_working_server_fails_the_handshake(tmp_path):
    text = stream(gateway("gw", simple(HOST, name="ok"), simple("shop.example.com", mode=None, name="no-mode")),
                  virtual_service("vs", [HOST, "shop.example.com"], ["gw"], ROUTES), secret("bookinfo-cert"))
    assert run(tmp_path, text)["outcome"] == "ok"
    assert run(tmp_path, text, host="shop.example.com")["outcome"] == "tls-handshake-failed"


def test_duplicate_host_drops_the_newer_server_whole(tmp_path):
    text = stream(gateway("first", simple(HOST), created=1),
                  gateway("second", simple(HOST, "shop.example.com"), created=2),
                  virtual_service("vs", [HOST, "shop.example.com"], ["first", "second"], ROUTES),
                  secret("bookinfo-cert"))
    assert run(tmp_path, text)["tls"]["server"] == "default/first servers[0]"
    r = run(tmp_path, text, host="shop.example.com")
    assert r["outcome"] == "tls-handshake-failed"
    assert any("skipping server on gateway default/second, duplicate host names: [bookinfo.example.com]"
               in s["result"] for s in r["steps"])


def test_namespace_prefixed_duplicates_slip_past_and_envoy_rejects_the_listener(tmp_path):
    text = stream(gateway("a", simple(f"default/{HOST}"), created=1),
                  gateway("b", simple(f"test/{HOST}"), ns="test", created=2), secret("bookinfo-cert"))
    r = run(tmp_path, text)
    step = r["steps"][-1]
    assert r["outcome"] == "tls-handshake-failed" and step.get("uncertain")
    assert "rejects the whole listener" in step["result"]


def test_exact_sni_beats_a_wildcard_and_a_wildcard_spans_labels(tmp_path):
    text = stream(gateway("gw", simple("*.example.com", name="wild"), simple(HOST, name="exact")),
                  virtual_service("vs", ["*.example.com"], ["gw"], ROUTES), secret("bookinfo-cert"))
    assert run(tmp_path, text)["tls"]["server"] == "default/gw servers[1]"
    assert run(tmp_path, text, host="a.b.example.com")["tls"]["server"] == "default/gw servers[0]"


def test_tls_text_output_and_option_errors(tmp_path, capsys):
    from graders.cli import main

    path = write_case(tmp_path, BOOKINFO_HTTPS)
    code, _, err = _run(["trace", path, "--port", "443", "--host", HOST, "--sni", "x"])
    assert code == 2 and "--sni/--no-sni need --tls" in err
    with pytest.raises(SystemExit) as exc:
        _run(["trace", path, "--tls", "--sni", "x", "--no-sni"])
    assert exc.value.code == 2
    assert main(["trace", path, "--port", "443", "--host", HOST, "--path", "/productpage", "--tls"]) == 0
    out = capsys.readouterr().out
    assert f"GET https://{HOST}/productpage" in out and "[filter-chain]" in out and "Outcome: ok" in out


def test_secret_data_is_dropped_when_loading(tmp_path):
    from graders.sources import load_state

    state = load_state([write_case(tmp_path, BOOKINFO_HTTPS)])
    assert [s.meta.key for s in state.secrets] == ["istio-system/bookinfo-cert"] and state.secrets_known
    dump = repr(state) + json.dumps([repr(s) for s in state.secrets])
    assert "Q0VSVElGSUNBVEU=" not in dump and "UFJJVkFURUtFWQ==" not in dump


def test_live_secret_names_are_listed_as_metadata_only(fake_api, fake_kubeconfig, tmp_path, capsys):
    """--secret-names: one metadata-only LIST per relevant namespace; the data never crosses the wire."""
    from fakeapi import bookinfo_routing

    from graders.cli import main

    fake_api.add_all(bookinfo_routing())
    fake_api.add(secret("bookinfo-cert", "default"))
    overlay = write_case(tmp_path, stream(gateway("gw", simple(HOST)), virtual_service("vs", [HOST], ["gw"], ROUTES)))
    argv = ["analyze", overlay, "--context", "kind-istio-lab", "--kubeconfig", fake_kubeconfig, "-o", "json",
            "--fail-on", "never"]
    assert main([*argv, "--secret-names"]) == 0
    data = json.loads(capsys.readouterr().out)
    f = [x for x in data["findings"] if x["code"] == "GW-TLS-SECRET-NOT-FOUND"]
    assert len(f) == 1 and f[0]["severity"] == "error" and "exists in default" in f[0]["message"]
    secret_calls = [r for r in fake_api.requests if r.resource == "secrets"]
    assert secret_calls and all(r.verb == "list" and "as=PartialObjectMetadataList" in r.accept and r.namespace
                                for r in secret_calls)
    fake_api.requests.clear()
    assert main(argv) == 0, "without the flag: no Secret request at all, existence is 'cannot verify'"
    data = json.loads(capsys.readouterr().out)
    assert [x["severity"] for x in data["findings"] if x["code"] == "GW-TLS-SECRET-NOT-FOUND"] == ["info"]
    assert not [r for r in fake_api.requests if r.resource == "secrets"]


def test_live_secret_names_refused_by_rbac_stay_unverified(fake_api, fake_kubeconfig, tmp_path):
    from fakeapi import bookinfo_routing

    from graders.sources import load_state

    fake_api.add_all(bookinfo_routing())
    fake_api.forbid("secrets")
    state = load_state(context="kind-istio-lab", kubeconfig=fake_kubeconfig, secret_names=True)
    assert state.secrets == () and not state.secrets_known


def test_the_optional_secret_names_role_grants_only_list_secrets_in_the_pod_namespace():
    from pathlib import Path

    import yaml

    rbac = Path(__file__).resolve().parents[1] / "deploy" / "rbac" / "grader-secret-names.yaml"
    (role,) = [d for d in yaml.safe_load_all(rbac.read_text()) if d]
    assert (role["kind"], role["metadata"]["namespace"]) == ("Role", "istio-system")
    assert [(r["apiGroups"], r["resources"], r["verbs"]) for r in role["rules"]] == [([""], ["secrets"], ["list"])]
    assert "PartialObjectMetadataList" in rbac.read_text()


def test_after_the_handshake_the_scheme_is_https(tmp_path):
    by_scheme = [rule(dest("productpage", 9080), match=[{"scheme": {"exact": "https"}}]),
                 rule(dest("reviews", 9080))]
    text = stream(gateway("gw", simple(HOST), server(80, HOST)),
                  virtual_service("vs", [HOST], ["gw"], by_scheme), secret("bookinfo-cert"))
    assert run(tmp_path, text)["destination"]["service"] == "default/productpage"
    plain = trace(tmp_path, text, port=80, host=HOST, path="/productpage")
    assert plain["destination"]["service"] == "default/reviews"


def test_tls_server_terminating_to_a_tcp_route(tmp_path):
    tls_simple = simple(HOST, protocol="TLS", name="tls")
    tcp_vs = virtual_service("tcp", [HOST], ["gw"], tcp=[{"route": [dest("productpage", 9080)]}])
    r = run(tmp_path, stream(gateway("gw", tls_simple), tcp_vs, secret("bookinfo-cert")))
    assert (r["outcome"], r["destination"]["service"], r["tls"]["mode"]) == ("ok", "default/productpage", "SIMPLE")
    assert r["tls"]["credential"]["status"] == "found"
    r = run(tmp_path, stream(gateway("gw", tls_simple), secret("bookinfo-cert")))
    assert r["outcome"] == "connection-refused" and any("listener missed network filter" in s["result"]
                                                        for s in r["steps"])


def test_kubernetes_scheme_credential_names_are_resolved_like_bare_names(tmp_path):
    for credential, status in (("kubernetes://bookinfo-cert", "found"), ("kubernetes://istio-system/bookinfo-cert",
                                                                           "found"),
                               ("kubernetes://default/bookinfo-cert", "denied")):
        text = stream(gateway("gw", simple(HOST, credential=credential)),
                      virtual_service("vs", [HOST], ["gw"], ROUTES), secret("bookinfo-cert"))
        assert run(tmp_path, text)["tls"]["credential"]["status"] == status, credential


def test_an_empty_sni_is_bad_input(tmp_path):
    code, _, err = _run(["trace", write_case(tmp_path, BOOKINFO_HTTPS), "--tls", "--sni", ""])
    assert code == 2 and "--no-sni" in err and err.count("\n") == 1


def test_a_tls_route_bound_to_a_terminating_https_server_gets_404(tmp_path):
    """istio-tls-facts.md section 2.4: a VirtualService with only tls routes on a SIMPLE server builds no HTTP
    route, so the request gets 404 NR after a successful handshake."""
    text = stream(gateway("gw", simple(HOST)), tls_vs("pt", [HOST], [HOST], "productpage"), secret("bookinfo-cert"))
    r = run(tmp_path, text)
    assert (r["outcome"], r["http_status"], r["tls"]["mode"]) == ("not-found", 404, "SIMPLE")


def test_gateway_port_8443_lands_on_the_same_listener_as_443(tmp_path):
    text = stream(gateway("gw", {**simple(HOST), "port": {"number": 8443, "name": "https", "protocol": "HTTPS"}}),
                  virtual_service("vs", [HOST], ["gw"], ROUTES), secret("bookinfo-cert"))
    r = run(tmp_path, text)
    assert r["outcome"] == "ok" and any("https.8443.https.gw.default" in s["result"] for s in r["steps"])


def test_a_duplicate_inside_one_gateway_names_that_gateway_once(tmp_path):
    text = stream(gateway("gw", simple(HOST, name="a"), simple(HOST, "shop.example.com", name="b")),
                  virtual_service("vs", [HOST, "shop.example.com"], ["gw"], ROUTES), secret("bookinfo-cert"))
    r = run(tmp_path, text, host="shop.example.com")
    step = next(s for s in r["steps"] if s["step"] == "tls-merge")
    assert r["outcome"] == "tls-handshake-failed" and step["objects"] == ["Gateway default/gw"]
    assert "default/gw servers[1] repeats host" in step["result"]


def test_an_invalid_secret_is_reported_without_its_data(tmp_path):
    from conformance.cli import analyze

    bad = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Bad_Name", "namespace": "istio-system"},
           "data": {"tls.key": "U0VDUkVUS0VZ"}, "stringData": {"password": "hunter2"}}
    result = analyze(tmp_path, stream(bad), baseline=False)
    invalid = [f for f in result["findings"] if f["code"] == "MANIFEST-INVALID"]
    assert len(invalid) == 1 and "Secret istio-system/Bad_Name" in invalid[0]["message"]
    assert "U0VDUkVUS0VZ" not in json.dumps(result) and "hunter2" not in json.dumps(result)
