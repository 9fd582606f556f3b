"""Lab 6: HTTPS at the gateway. Serve https://bookinfo.example.com/productpage with a self-signed
certificate (its Secret in the gateway pod's namespace), redirect http:// to https://, then serve a
second host, details.example.com, on the same port 443.

What can be checked where (graders never read Secret data):
- the server, its mode and its credentialName: from the Gateway, in every mode (GW-TLS-* findings);
- the Secret's existence: from Secret *metadata* (the learner's manifests in simulated mode, where the
  simulated cluster holds no Secret of its own, so a Secret not in the files does not exist; a
  snapshot's Secret metadata; live only when Secrets were listed), else "cannot verify";
- the names in the certificate: only from the certificate the gateway really serves, so only live
  (``live_only``: a real TLS handshake, ``graders.tlsprobe``); off-cluster it is not-evaluated;
- the HTTPS requests: the TLS trace (``trace --tls``) off-cluster; a real HTTPS request live.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from graders import tlsmodel
from graders.checks import (
    INGRESS,
    Context,
    Lab,
    Outcome,
    blocked,
    client_ports,
    failed,
    gateway_service_pods,
    istio_and_bookinfo_ready,
    learner_gateways,
    passed,
)
from graders.mesh import host_covers
from graders.state import Gateway, Server

HOST = "bookinfo.example.com"
SECOND_HOST = "details.example.com"
PATH, SECOND_PATH = "/productpage", "/details/0"
HTTPS_PORT = 443  # the gateway Service port (targetPort 8443; kind maps host 8443 to it)
WORK = "labs/lab06/start labs/lab06/work"  # what a learner traces: the start state and their files

LAB = Lab("lab06", "HTTPS at the gateway", chapter="chapters/08-https", notebook="labs/lab06-https.ipynb",
          summary="Serve Bookinfo over HTTPS with a self-signed certificate, redirect HTTP, add a second host.")


def _pod_ns(ctx: Context) -> str:
    pods = gateway_service_pods(ctx.state)
    return pods[0].meta.namespace if pods else "istio-system"


def _tls_servers(ctx: Context, host: str) -> list[tuple[Gateway, Server]]:
    """Servers with a tls block that reach ``host`` through the gateway Service's port 443."""
    out = []
    for gw in learner_gateways(ctx.state, lab=LAB.id):
        for s in gw.servers:
            if s.tls is None or s.https_redirect or s.is_plain_http:
                continue
            hosts = [h.split("/", 1)[-1] for h in s.hosts]
            if any(host_covers(h, host) for h in hosts) and HTTPS_PORT in client_ports(ctx.state, s.port):
                out.append((gw, s))
    return out


def _secrets_ctx(ctx: Context) -> Context:
    """In simulated mode every Secret there is comes from the files (the simulated cluster has none),
    so a Secret missing from them is missing; in the other modes the source says whether it listed them."""
    if ctx.state.mode not in ("simulated", "manifests") or ctx.state.secrets_known:
        return ctx
    return ctx.derived(("secrets-known",), lambda: Context(replace(ctx.state, secrets_known=True), target=ctx.target))


def tls_trace(ctx: Context, host: str, path: str) -> Any:
    """The TLS trace of ``GET https://host/path`` on Service port 443, with SNI ``host`` (cached in the
    context's trace cache under a key of its own)."""
    from graders.trace import Request, trace

    sctx = _secrets_ctx(ctx)
    key = ("tls", INGRESS, HTTPS_PORT, host, path)
    if key not in sctx._traces:
        sctx._traces[key] = trace(sctx.state, Request(gateway=INGRESS, port=HTTPS_PORT, host=host, path=path,
                                                      tls=True))
    return sctx._traces[key]


def _mode_line(s: Server) -> str:
    return f"tls.mode {s.tls.mode}" if s.tls and s.tls.mode else "no tls.mode (so PASSTHROUGH)"


@LAB.check("ready", "Istio and Bookinfo are running", points=1)
def ready(ctx: Context) -> Outcome:
    return istio_and_bookinfo_ready(ctx)


https_server_title = f"An HTTPS server on port 443 terminates TLS for {HOST}"


@LAB.check("https-server", https_server_title, points=2)
def https_server(ctx: Context) -> Outcome:
    found = _tls_servers(ctx, HOST)
    gws = learner_gateways(ctx.state, lab=LAB.id)
    if not found:
        return failed(f"No Gateway server with a tls block accepts {HOST} on the gateway Service's port 443 (Gateways: "
                      f"{', '.join(g.meta.key for g in gws) or 'none'}).",
                      "Add a server to your Gateway's spec.servers with port 443, protocol HTTPS, the host and a tls "
                      "block.",
                      f"{ctx.look('get svc istio-ingressgateway -n istio-system')} shows port 443 (targetPort 8443).")
    for gw, s in found:
        mode = tlsmodel.mode_of(s)
        if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
            return passed(f"Gateway {gw.meta.key} servers[{s.index}] ({s.protocol}, port {s.port}) terminates TLS "
                          f"for {HOST} with tls.mode {mode}.")
    gw, s = found[0]
    ignored = ctx.findings_for("GW-TLS-CREDENTIAL-IGNORED", gw.meta.ref)
    why = (" GW-TLS-CREDENTIAL-IGNORED: its credentialName is ignored and the http routes of your VirtualService are "
           "never used." if ignored else "")
    return failed(f"Gateway {gw.meta.key} servers[{s.index}] accepts {HOST} on port {s.port} but has "
                  f"{_mode_line(s)}: Envoy does not terminate TLS there.{why}",
                  f"Look at servers[{s.index}].tls of Gateway {gw.meta.key}: which mode makes the gateway present "
                  "the certificate itself?",
                  "An omitted tls.mode is PASSTHROUGH, istio's default: the encrypted bytes would be passed on "
                  "unopened.")


@LAB.check("secret-found", "The certificate's Secret is in the gateway pod's namespace", points=2)
def secret_found(ctx: Context) -> Outcome:
    pod_ns = _pod_ns(ctx)
    servers = _tls_servers(ctx, HOST)
    if not servers:
        return blocked([https_server_title], "there is no server whose certificate could be looked for")
    found = [(g, s) for g, s in servers if s.tls and s.tls.credential]
    if not found:
        return failed(f"No server for {HOST} on port 443 names a certificate (tls.credentialName).",
                      "Give the HTTPS server's tls block a credentialName: the name of a kubernetes.io/tls Secret.",
                      f"The Secret must be in {pod_ns}, the namespace of the gateway pods.")
    sctx = _secrets_ctx(ctx)
    gw, s = found[0]
    cred = tlsmodel.credential(sctx.state, s, pod_ns)
    where = f"Secret {cred.namespace}/{cred.secret}"
    if cred.status == "found":
        return passed(f"Gateway {gw.meta.key} servers[{s.index}] names credentialName '{cred.name}', and {where} "
                      "exists where istiod looks (the gateway pod's namespace; its data is not read).")
    if cred.status == "unknown" and ctx.state.mode == "live":
        return _secret_by_handshake(ctx, where)
    if cred.status == "unknown":
        return Outcome(False, f"Cannot verify that {where} exists: this {ctx.state.mode} target lists no Secrets "
                       "(the graders never read Secret data; a snapshot keeps Secret names only when taken with "
                       "permission to list them).", not_evaluated=True)
    if cred.status == "denied":
        return failed(f"Gateway {gw.meta.key} servers[{s.index}] names credentialName '{cred.name}' in another "
                      f"namespace than the gateway pod's ({pod_ns}); istiod refuses to fetch it.",
                      f"Look at servers[{s.index}].tls.credentialName: istiod only reads Secrets from {pod_ns}.",
                      "Write the bare Secret name and create the Secret in the gateway pod's namespace.")
    elsewhere = (f" A Secret of that name exists in {', '.join(cred.elsewhere)}, where istiod never looks."
                 if cred.elsewhere else "")
    return failed(f"Gateway {gw.meta.key} servers[{s.index}] names credentialName '{cred.name}', but there is no "
                  f"{where}.{elsewhere} The handshake fails (curl: (35)).",
                  f"Look at metadata.namespace of your Secret '{cred.secret}': istiod looks for it in the namespace "
                  "of the gateway pods, not in the Gateway's.",
                  f"{ctx.look('get pods -n istio-system -l istio=ingressgateway')} shows the gateway pods and their "
                  "namespace.")


def _secret_by_handshake(ctx: Context, where: str) -> Outcome:
    """Live, with Secrets not listed: a completed handshake with the host's SNI is the evidence that istiod
    found the certificate (it sends none when the Secret is missing or in another namespace)."""
    from graders.tlsprobe import handshake

    rec = handshake(ctx.target.context, ctx.target.kubeconfig, gateway=INGRESS, port=HTTPS_PORT, sni=HOST)
    if rec.error is None:
        return passed(f"Live TLS handshake with SNI {HOST} completed, so istiod found {where} (Secrets were not "
                      "listed; their data is never read).")
    return failed(f"Live TLS handshake with SNI {HOST} on Service port 443: {rec.error}. The server for it exists, so "
                  f"the likely cause is that {where} does not exist.",
                  "Look at metadata.namespace of your Secret: istiod looks for it in the namespace of the gateway "
                  "pods, not in the Gateway's.",
                  f"{ctx.look('get secret -n istio-system')} lists the Secrets there (names, types and key counts "
                  "only).")


@LAB.check("certificate-host", f"The certificate the gateway serves names {HOST}", points=2,
           needs=("https-server", "secret-found"), live_only=True)
def certificate_host(ctx: Context) -> Outcome:
    from graders.tlsprobe import handshake

    rec = handshake(ctx.target.context, ctx.target.kubeconfig, gateway=INGRESS, port=HTTPS_PORT, sni=HOST)
    if rec.error:
        return failed(f"Live TLS handshake with SNI {HOST} on Service port 443: {rec.error}.",
                      "Look at the gateway's HTTPS server for this host and its Secret.",
                      f"`curl -v --resolve {HOST}:8443:127.0.0.1 -k https://{HOST}:8443{PATH}` shows the handshake.")
    names = ", ".join(rec.names) or "no DNS name"
    if rec.covers(HOST):
        return passed(f"Live TLS handshake with SNI {HOST}: the gateway serves a certificate for {names}.")
    return failed(f"Live TLS handshake with SNI {HOST}: the gateway serves a certificate for {names}, not {HOST}; "
                  "curl without -k stops with exit code 60 (no alternative certificate subject name matches).",
                  "Look at the host names you gave when you made the certificate (its subjectAltName).",
                  "Make a new certificate for the right host, replace the Secret's data, and the gateway picks it up "
                  "without a restart.")


def _https_outcome(ctx: Context, host: str, path: str, service: str) -> tuple[bool, str, Any]:
    """(reached, sentence, evidence) for ``GET https://host/path``: a real request live, the TLS trace
    elsewhere (snapshots record plain HTTP requests only)."""
    if ctx.state.mode == "live":
        from graders.tlsprobe import https_get

        rec = https_get(ctx.target.context, ctx.target.kubeconfig, gateway=INGRESS, port=HTTPS_PORT, host=host,
                        path=path)
        ok = rec.status == 200 and rec.upstream
        what = rec.error or f"HTTP {rec.status}" + (" from the application" if rec.upstream else " from the gateway")
        return ok, f"Live request: GET https://{host}{path} via {INGRESS} port 443 -> {what}.", rec
    tr = tls_trace(ctx, host, path)
    dest = (tr.destination or {}).get("service")
    ok = tr.outcome == "ok" and tr.http_status is None and dest == service
    if ok:
        detail = f"the handshake succeeds and the request reaches {dest} (simulated)"
    elif tr.outcome == "ok":
        detail = f"the gateway answers HTTP {tr.http_status} itself" if tr.http_status else f"reaches {dest}"
    else:
        last = tr.steps[-1].result if tr.steps else ""
        detail = f"{tr.outcome}: {last}".rstrip(".")
    return ok, f"Simulated request: GET https://{host}{path} via {INGRESS} port 443 -> {detail}.", tr


@LAB.check("https-productpage", f"https://{HOST}{PATH} returns the product page", points=3,
           needs=("https-server", "secret-found"))
def https_productpage(ctx: Context) -> Outcome:
    ok, sentence, _ = _https_outcome(ctx, HOST, PATH, "default/productpage")
    if ok:
        return passed(sentence)
    return failed(sentence,
                  f"After the handshake the request is routed with the HTTPS server's own route table: look at the "
                  f"http routes of the VirtualService bound to your Gateway for {HOST}.",
                  f"`python -m graders trace {WORK} --port 443 --tls --host {HOST} --path {PATH}` shows the step where "
                  "it stops (a tls: route with sniHosts is for PASSTHROUGH servers only).")


@LAB.check("redirect", f"http://{HOST}{PATH} is redirected to https://", points=2)
def redirect(ctx: Context) -> Outcome:
    ev = ctx.request(port=80, host=HOST, path=PATH, service="default/productpage")
    if ev.source == "simulated":
        tr = ev.trace
        to_https = tr.outcome == "ok" and tr.http_status == 301 and any(
            "https://" in s.result for s in tr.steps if s.step == "virtual-host")
    else:
        headers = {k.lower(): v for k, v in ((ev.record.headers or {}) if ev.record else {}).items()}
        to_https = ev.status == 301 and headers.get("location", "").startswith("https://")
    prefix = ev.sentence.split(" -> ")[0]
    if to_https:
        return passed(f"{prefix} -> HTTP 301 to https://{HOST}{PATH}.")
    return failed(f"{ev.sentence.rstrip('.')}; expected a 301 redirect to https://.",
                  f"Look at the port 80 server of your Gateway for {HOST}: it needs a tls block with httpsRedirect.",
                  "The redirect is built into the virtual host, so a VirtualService with http routes for the host must "
                  "still be bound to the Gateway.")


@LAB.check("no-tls-conflict", "No HTTPS server is dropped or clashes with another", points=2)
def no_tls_conflict(ctx: Context) -> Outcome:
    gws = learner_gateways(ctx.state, lab=LAB.id)
    refs = {g.meta.ref for g in gws}
    found = [f for f in ctx.findings_for("GW-CONFLICT") if f.severity == "error" and refs & set(f.resources)]
    if not found:
        return passed(f"No conflicting servers on Gateway {', '.join(g.meta.key for g in gws)}.")
    return failed(found[0].message,
                  "Look at the hosts of your HTTPS servers on the same listener (443 and 8443 are the same "
                  "listener on this gateway): each host name may appear once.",
                  found[0].hint)


@LAB.check("second-host", f"https://{SECOND_HOST}{SECOND_PATH} reaches details on the same port", points=2)
def second_host(ctx: Context) -> Outcome:
    ok, sentence, evidence = _https_outcome(ctx, SECOND_HOST, SECOND_PATH, "default/details")
    if ok:
        return passed(sentence)
    if not no_tls_conflict(ctx).passed and any(s.step == "tls-merge" for s in
                                                         getattr(evidence, "steps", ())):
        return blocked(["No HTTPS server is dropped or clashes with another"],
                       f"the server for {SECOND_HOST} is the one istiod drops")
    return failed(sentence,
                  f"Look for a server on port 443 whose hosts include {SECOND_HOST}, with its certificate, and a "
                  "VirtualService for that host routing /details to the details Service.",
                  f"`python -m graders trace {WORK} --port 443 --tls --host {SECOND_HOST} --path {SECOND_PATH}` "
                  "shows which filter chain the SNI selects.")
