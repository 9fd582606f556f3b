"""Lab 6 (HTTPS at the gateway): every solution gets full marks off-cluster, every known wrong attempt
fails exactly its checks with hints, the certificate check is live-only (graders never read Secret
data) and reads the certificate a real TLS handshake returns, and the course's certificates are what
their folders claim."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
from pathlib import Path

import pytest
import yaml
from test_lab_env import env, lab  # noqa: F401  (lab setup/solve/reset against the fake API, fake tools)

from graders import certs
from graders.labs import lab_dir, run
from graders.labs.lab06 import HOST, LAB, SECOND_HOST
from graders.labs.matrix import load_matrix
from graders.tlsprobe import handshake

LAB_DIR = lab_dir(LAB)


def statuses(result) -> dict[str, str]:
    return {c.id: c.status for c in result.checks}


@pytest.mark.parametrize("variant", sorted(p.name for p in (LAB_DIR / "solutions").iterdir()))
def test_every_solution_passes_and_the_certificate_is_left_to_a_live_cluster(variant):
    result = run("lab06", paths=[str(LAB_DIR / "solutions" / variant)])
    got = statuses(result)
    assert got.pop("certificate-host") == "not-evaluated"
    assert set(got.values()) == {"passed"}, [(c.id, c.message) for c in result.checks if not c.passed]
    assert result.score == result.max_score == 14 and result.not_evaluated_points == 2


WRONG_HINTS = {  # attempt -> (check, words its first hint must contain)
    "secret-in-default": ("secret-found", "namespace of the gateway pods"),
    "mode-omitted": ("https-server", "tls of gateway default/bookinfo-gateway"),
    "duplicate-host-second-gateway": ("no-tls-conflict", "each host name may appear once"),
    "both-443-and-8443": ("no-tls-conflict", "443 and 8443 are the same listener"),
    "tls-route-for-https": ("https-productpage", "http routes of the virtualservice"),
}


@pytest.mark.parametrize("attempt", sorted(WRONG_HINTS))
def test_wrong_attempt_hints_point_at_the_field(attempt):
    check_id, words = WRONG_HINTS[attempt]
    chk = run("lab06", paths=[str(LAB_DIR / "wrong" / attempt)]).check(check_id)
    assert chk.status == "failed" and len(chk.hints) >= 2
    assert words in chk.hints[0].lower(), chk.hints


def test_secret_in_the_wrong_namespace_says_where_it_is_and_where_it_must_be():
    chk = run("lab06", paths=[str(LAB_DIR / "wrong" / "secret-in-default")]).check("secret-found")
    assert "no Secret istio-system/bookinfo-credential" in chk.message and "exists in default" in chk.message


def test_without_any_secret_simulated_mode_says_missing_not_cannot_verify(tmp_path):
    gateway = (LAB_DIR / "solutions" / "reference" / "bookinfo-gateway.yaml").read_text()
    (tmp_path / "gw.yaml").write_text(gateway)
    result = run("lab06", paths=[str(tmp_path)])
    assert result.check("secret-found").status == "failed"
    assert "there is no Secret istio-system/bookinfo-credential" in result.check("secret-found").message


def test_a_dropped_second_host_is_blocked_by_the_conflict_not_charged_twice():
    result = run("lab06", paths=[str(LAB_DIR / "wrong" / "duplicate-host-second-gateway")])
    assert result.check("second-host").status == "blocked"
    assert "skipping server on gateway default/details-gateway" in result.check("no-tls-conflict").message


def _secret_names(folder: Path) -> dict[tuple[str, str], tuple[str, ...]]:
    out = {}
    for doc in yaml.safe_load_all((folder / "secrets.yaml").read_text()):
        cert = base64.b64decode(doc["data"]["tls.crt"])
        out[(doc["metadata"]["namespace"], doc["metadata"]["name"])] = certs.dns_names(cert)
    return out


def test_committed_certificates_are_what_the_matrix_says():
    """The tests may read the course's own test certificates (the graders never do)."""
    for row in load_matrix("lab06"):
        names = _secret_names(LAB_DIR / row.folder)
        bookinfo = next(v for (ns, n), v in names.items() if n == "bookinfo-credential")
        if row.folder == "wrong/cert-wrong-host":
            assert bookinfo == ("bookinfo.example.org",)
            assert row.live_failed == ("certificate-host",)
        else:
            assert HOST in bookinfo
        assert any(SECOND_HOST in v for v in names.values()), row.folder
        assert {ns for ns, _ in names} == ({"default"} if row.folder == "wrong/secret-in-default" else {"istio-system"})


def test_self_signed_certificate_has_the_names_and_verifies_with_curl_semantics(tmp_path):
    paths = certs.write_tls_secret(tmp_path, "bookinfo-credential", "istio-system", [HOST, SECOND_HOST])
    crt, key, manifest = paths
    assert certs.dns_names(crt.read_bytes()) == (HOST, SECOND_HOST)
    doc = yaml.safe_load(manifest.read_text())
    assert doc["type"] == "kubernetes.io/tls" and doc["metadata"] == {"name": "bookinfo-credential",
                                                                       "namespace": "istio-system"}
    ctx = ssl.create_default_context(cafile=str(crt))  # the certificate is its own trust anchor (--cacert)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(crt), str(key))
    with _tls_server(server_ctx) as address, socket.create_connection(address) as raw, \
            ctx.wrap_socket(raw, server_hostname=HOST) as tls:
        assert tls.version()
    assert certs.name_covers("*.example.com", HOST) and not certs.name_covers("*.example.com", "a.b.example.com")


class _tls_server:
    """A one-connection TLS server on 127.0.0.1 (a stand-in for the gateway's listener 8443)."""

    def __init__(self, ctx: ssl.SSLContext):
        self.ctx, self.sock = ctx, socket.create_server(("127.0.0.1", 0))

    def __enter__(self):
        def serve():
            conn, _ = self.sock.accept()
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    data = tls.recv(4096)
                    if data.startswith(b"GET"):
                        tls.sendall(b"HTTP/1.1 200 OK\r\nx-envoy-upstream-service-time: 3\r\ncontent-length: 2\r\n"
                                    b"connection: close\r\n\r\nok")
            except (ssl.SSLError, OSError):
                pass
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        return self.sock.getsockname()

    def __exit__(self, *exc):
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("names", [("bookinfo.example.org",), (HOST,)])
def test_live_handshake_reads_the_served_certificate_through_a_port_forward(fake_api, fake_kubeconfig, tmp_path,
                                                                            names):
    pair = certs.self_signed(list(names))
    (tmp_path / "c.pem").write_bytes(pair.cert_pem)
    (tmp_path / "k.pem").write_bytes(pair.key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    with _tls_server(server_ctx) as address:
        fake_api.set_portforward_backend(address, 8443)  # Service port 443 -> the pod's 8443
        rec = handshake("kind-istio-lab", fake_kubeconfig, sni=HOST, path="/productpage")
    assert rec.error is None and rec.names == names
    assert rec.covers(HOST) == (names == (HOST,))
    assert rec.status == 200 and rec.upstream


def test_live_handshake_failure_is_reported_not_raised(fake_api, fake_kubeconfig):
    plain = socket.create_server(("127.0.0.1", 0))
    try:
        fake_api.set_portforward_backend(plain.getsockname(), 8443)
        threading.Thread(target=lambda: plain.accept()[0].close(), daemon=True).start()
        rec = handshake("kind-istio-lab", fake_kubeconfig, sni=HOST, timeout=2)
    finally:
        plain.close()
    assert rec.error and "35" in rec.error and rec.names == ()


# --- live: the checks' evidence is a real handshake and real HTTPS requests through a port-forward ---------
def _tls_gateway(contexts: dict[str, ssl.SSLContext], routes: dict[str, str]):
    """A FakeGateway (tests/fakeapi.py) that speaks TLS, choosing its certificate by SNI as Envoy's filter
    chains do; an SNI it has no certificate for gets its connection closed during the handshake."""
    from fakeapi import FakeGateway

    def pick(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext):
        if name not in contexts:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sock.context = contexts[name]
        return None

    front = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    front.load_cert_chain(*next(iter(_FILES.values())))
    front.sni_callback = pick

    class TlsGateway(FakeGateway):
        def _run(self, httpd):
            plain_accept = httpd.get_request

            def get_request():
                conn, addr = plain_accept()
                return front.wrap_socket(conn, server_side=True), addr
            httpd.get_request = get_request
            return super()._run(httpd)
    return TlsGateway(routes)


_FILES: dict[str, tuple[str, str]] = {}


def _server_context(tmp_path: Path, names: list[str]) -> ssl.SSLContext:
    pair = certs.self_signed(names)
    crt, key = tmp_path / f"{names[0]}.crt", tmp_path / f"{names[0]}.key"
    crt.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    _FILES[names[0]] = (str(crt), str(key))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    return ctx


def _redirecting_gateway():
    from fakeapi import FakeGateway

    class Redirect(FakeGateway):
        def answer(self, host: str, path: str):
            return 301, {"location": f"https://{host}{path}"}, b""
    return Redirect({})


@pytest.mark.parametrize(("bookinfo_names", "want"), [(["bookinfo.example.com"], "passed"),
                                                       (["bookinfo.example.org"], "failed")])
def test_live_lab_reads_the_served_certificate_and_sends_https_requests(fake_api, fake_kubeconfig, tmp_path,
                                                                        bookinfo_names, want):
    _FILES.clear()
    for doc in yaml.safe_load_all((LAB_DIR / "solutions" / "reference" / "bookinfo-gateway.yaml").read_text()):
        fake_api.add(doc)  # the learner's Gateway and VirtualServices; Secrets are not listed live
    contexts = {"bookinfo.example.com": _server_context(tmp_path, bookinfo_names),
                "details.example.com": _server_context(tmp_path, ["details.example.com"])}
    with _tls_gateway(contexts, {"/productpage": "app", "/details": "app"}) as on_8443, \
            _redirecting_gateway() as on_8080:
        fake_api.set_portforward_backend(on_8443.address, 8443)
        fake_api.set_portforward_backend(on_8080.address, 8080)
        result = run("lab06", context="kind-istio-lab", kubeconfig=fake_kubeconfig)
    got = statuses(result)
    assert result.mode == "live" and got.pop("certificate-host") == want, result.check("certificate-host").message
    assert set(got.values()) == {"passed"}, [(c.id, c.message) for c in result.checks if not c.passed]
    assert "handshake with SNI bookinfo.example.com completed" in result.check("secret-found").message
    assert result.check("https-productpage").message.startswith("Live request: GET https://bookinfo.example.com")
    assert ("GET", "details.example.com", "/details/0") in on_8443.requests
    if want == "failed":
        assert "bookinfo.example.org, not bookinfo.example.com" in result.check("certificate-host").message


def test_live_secret_check_fails_when_the_gateway_closes_the_handshake(fake_api, fake_kubeconfig, tmp_path):
    for doc in yaml.safe_load_all((LAB_DIR / "solutions" / "reference" / "bookinfo-gateway.yaml").read_text()):
        fake_api.add(doc)
    _FILES.clear()
    contexts = {"details.example.com": _server_context(tmp_path, ["details.example.com"])}  # no bookinfo chain
    with _tls_gateway(contexts, {"/details": "app"}) as on_8443, _redirecting_gateway() as on_8080:
        fake_api.set_portforward_backend(on_8443.address, 8443)
        fake_api.set_portforward_backend(on_8080.address, 8080)
        result = run("lab06", context="kind-istio-lab", kubeconfig=fake_kubeconfig)
    chk = result.check("secret-found")
    assert chk.status == "failed" and "curl would exit with 35" in chk.message
    assert "namespace of the gateway pods" in chk.hints[0]
    assert result.check("second-host").status == "passed"


# --- lab setup / solve / reset 6 against the fake API --------------------------------------------------------
def test_solve_creates_the_secrets_labelled_and_reset_removes_only_those(env, capsys):  # noqa: F811
    api = env[0]
    assert lab(env, capsys, "setup", "6")[0] == 0
    api.add({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",  # the learner's own: kept
             "metadata": {"name": "my-credential", "namespace": "istio-system"}, "data": {}})
    rc, out = lab(env, capsys, "solve", "6")
    assert rc == 0, out
    made = {s["metadata"]["name"]: s["metadata"].get("labels", {}) for s in api.objects("Secret")
            if s["metadata"]["namespace"] == "istio-system"}
    assert made["bookinfo-credential"]["app.kubernetes.io/part-of"] == "istio-gateway-course"
    assert made["details-credential"]
    rc, out = lab(env, capsys, "reset", "6")
    assert rc == 0, out
    left = {s["metadata"]["name"] for s in api.objects("Secret") if s["metadata"]["namespace"] == "istio-system"}
    assert "bookinfo-credential" not in left and "details-credential" not in left
    assert "my-credential" in left


def test_live_failed_rows_name_only_live_only_checks(tmp_path, monkeypatch):
    import graders.labs as labs

    (tmp_path / "lab06" / "solutions" / "a").mkdir(parents=True)
    (tmp_path / "lab06" / "wrong" / "b").mkdir(parents=True)
    monkeypatch.setattr(labs, "LABS_DIR", tmp_path)
    matrix = tmp_path / "lab06" / "matrix.yaml"
    head = "lab: lab06\nrows:\n- {folder: solutions/a, what: x, not_evaluated: [certificate-host]}\n"
    matrix.write_text(head + "- {folder: wrong/b, what: y, live_failed: [https-server]}\n")
    with pytest.raises(ValueError, match="live_failed lists only live-only checks"):
        load_matrix("lab06")
    matrix.write_text(head + "- {folder: wrong/b, what: y, live_failed: [certificate-host]}\n")
    (row_a, row_b) = load_matrix("lab06")
    assert row_b.expected_status("certificate-host") == "not-evaluated" and not row_b.failed
    assert row_b.expected_score(LAB) == row_a.expected_score(LAB) == (14, 14)


def test_lab_commands_never_read_secret_data(env, capsys):  # noqa: F811
    """`lab solve 6` run twice (the second run finds the course's Secrets in place) and `lab reset 6` read a
    Secret's metadata only (PartialObjectMetadata), never its data, not even the course's own."""
    api = env[0]
    api.add({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
             "metadata": {"name": "bookinfo-credential", "namespace": "default"}, "data": {"tls.key": "c2VjcmV0"}})
    api.clear_requests()
    outputs = []
    for argv in (("solve", "6"), ("solve", "6"), ("reset", "6")):
        rc, out = lab(env, capsys, *argv)
        assert rc == 0, out
        outputs.append(out)
    secret_reads = [r for r in api.requests if r.resource == "secrets" and r.method == "GET"]
    assert any(r.name for r in secret_reads), "the second solve looks its Secrets up by name"
    assert all("as=PartialObjectMetadata" in r.accept for r in secret_reads), \
        [(r.path, r.accept) for r in secret_reads if "as=PartialObjectMetadata" not in r.accept]
    assert "Secret istio-system/bookinfo-credential  (labs/lab06/solutions/reference/secrets.yaml:3; written " \
           "again: its contents are never read)" in outputs[1]
