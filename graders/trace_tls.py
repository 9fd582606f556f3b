"""The TLS part of a trace (``trace --tls``): after the listener, the client sends a ClientHello
with an SNI (the Host by default, ``--sni NAME``, or none with ``--no-sni``); Envoy picks a filter
chain by SNI, terminates with that server's credential or passes the bytes through, and a
terminating HTTPS chain routes the request with that server's own route table.

Outcomes added by this step: ``tls-handshake-failed`` (no chain for the SNI; the credential is not
available; the chain is plain HTTP, whose HCM answers a ClientHello with a plaintext 400), ``ok``
for a passthrough or TLS-terminated TCP route with its destination. The model of istiod's chains is
``graders.tlsmodel``; the facts are in shared/reference/istio-tls-facts.md §2-§4.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from graders import mesh, tlsmodel
from graders.mesh import ListenerServer
from graders.state import Pod

if TYPE_CHECKING:
    from graders.trace import _Tracer


def client_sni(host: str, sni: str | None) -> str | None:
    """The SNI a client sends: the given name, else the host without its port; none for ``--no-sni``
    or an IP literal (curl and Python send no SNI for an IP address; RFC 6066 section 3)."""
    name = mesh.strip_port(host) if sni is None else sni
    if not name:
        return None
    try:
        ipaddress.ip_address(name.strip("[]"))
        return None
    except ValueError:
        return name.lower()


def _server_label(ls: ListenerServer) -> str:
    return f"{ls.gateway.meta.key} servers[{ls.server.index}]"


def _fail(t: _Tracer, info: dict[str, Any]) -> None:
    from graders.trace import _Done

    t.tls_info = info
    raise _Done("tls-handshake-failed")


def follow(t: _Tracer, servers: list[ListenerServer], pod: Pod) -> None:
    """Continue the trace for a TLS client; always ends it (raises the tracer's _Done)."""
    from graders.trace import _Done

    sni = client_sni(t.req.host, t.req.sni)
    info: dict[str, Any] = {"sni": sni, "server": None, "mode": None, "credential": None}
    t.tls_info = info
    kept, dropped = tlsmodel.dedupe(servers)
    for d in dropped:
        t.add("tls-merge", f"Server {_server_label(d.ls)} repeats host {', '.join(d.duplicates)} already used on this "
              f"port by {_server_label(d.holder)}, which was merged first: istiod skips the newer server whole, all "
              f"its hosts included (log: {d.log_line}).",
              *dict.fromkeys([d.ls.gateway.meta.ref, d.holder.gateway.meta.ref]))
    kept, rejected, _plain = mesh.merge_port(kept)
    for ls in rejected:
        t.add("tls-merge", f"The {ls.server.protocol} server {_server_label(ls)} cannot share this port with the "
              "plain-text server merged before it; istiod skips it (\"conflict with existing server\").",
              ls.gateway.meta.ref)
    chains = tlsmodel.build_chains(t.state, kept, t.proxy_ns)
    for text, objects in chains.notes:
        t.add("filter-chain", text, *objects)
    if not chains.chains:
        t.add("filter-chain", "No filter chain is left on this listener, so istiod omits it (\"must have more than 0 "
              "chains in listener\") and nothing listens: the connection is refused.")
        raise _Done("connection-refused")
    clashes = tlsmodel.conflicts(chains.chains)
    if clashes:
        a, b = clashes[0]
        t.add("filter-chain", f"The {a.label} and the {b.label} match the same SNI. Envoy rejects the whole listener "
              "update (\"multiple filter chains with the same matching rules\", an LDS NACK; istiod logs ADS:LDS: ACK "
              "ERROR) and keeps the listener it had before, or none if this listener is new. Which chain answers "
              "cannot be known from the configuration.", *dict.fromkeys([a.ls.gateway.meta.ref, b.ls.gateway.meta.ref]),
              uncertain=True)
        _fail(t, info)
    listed = "; ".join(c.label for c in chains.chains)
    chain = tlsmodel.select(chains.chains, sni)
    said = f"SNI '{sni}'" if sni else "no SNI"
    if chain is None:
        t.add("filter-chain", f"The ClientHello carries {said}. The listener's filter chains are: {listed}. None "
              "matches and Istio sets no default chain, so Envoy closes the connection during the handshake "
              "(curl: (35) ... SSL_ERROR_SYSCALL or Connection reset by peer).",
              *dict.fromkeys(c.ls.gateway.meta.ref for c in chains.chains))
        _fail(t, info)
    assert chain is not None
    ls = chain.ls
    info.update(server=_server_label(ls), mode=tlsmodel.mode_of(ls.server) if ls.server.tls else None)
    how = "has no server_names, so it takes any SNI or none" if chain.sni is None else "matches it"
    t.add("filter-chain", f"The ClientHello carries {said}; the {chain.label} {how}.", ls.gateway.meta.ref)
    if chain.kind == "http":
        t.add("tls-handshake", f"That is the plain HTTP chain of {_server_label(ls)}: its HTTP parser reads the "
              "ClientHello as a malformed request and answers a plaintext 400 (access log 400 DPE); the client "
              "reports 'wrong version number' (curl: (35)). Use http:// on this port, or an HTTPS server.",
              ls.gateway.meta.ref)
        _fail(t, info)
    if chain.kind == "tcp":
        t.add("tls-handshake", f"That is the plain TCP chain of {_server_label(ls)}: the bytes of the handshake are "
              f"relayed unchanged by tcp[{chain.rule.index}] of {chain.vs.meta.key}, so the destination must speak "
              "TLS itself.", chain.vs.meta.ref, uncertain=True)  # type: ignore[union-attr]
        t._tcp_destination(chain.vs, chain.rule, ls)
    if chain.kind == "passthrough":
        info["mode"] = "PASSTHROUGH"
        t.add("tls-route", f"Passthrough: Envoy does not terminate TLS; tls[{chain.rule.index}] match "  # type: ignore
              f"{chain.match_index} of {chain.vs.meta.key} (sniHosts {', '.join(chain.sni or ('*',))}) forwards the "
              "encrypted bytes, so the destination serves its own certificate.", chain.vs.meta.ref)
        t._tcp_destination(chain.vs, chain.rule, ls)
    _handshake(t, ls, info)
    if chain.kind == "tls-terminate":
        t.add("tls-route", f"TLS is terminated and the decrypted bytes go to tcp[{chain.rule.index}] of "  # type: ignore
              f"{chain.vs.meta.key}.", chain.vs.meta.ref)
        t._tcp_destination(chain.vs, chain.rule, ls)
    name = tlsmodel.route_name(ls)
    t.add("https-routes", f"After the handshake the request is looked up in this server's own route table {name} "
          "(only the hosts of this server; a Host that differs from the SNI gets 404 unless it is one of them).",
          ls.gateway.meta.ref)
    plain = ls  # the connection is already TLS: httpsRedirect has nothing to redirect (memoised: the route
    if ls.server.https_redirect:  # table cache is keyed by object identity)
        plain = t.state.memo(("tls-no-redirect", id(ls)),
                             lambda: replace(ls, server=replace(ls.server, https_redirect=False)))
    t._route(t._virtual_host([plain], pod))


def _handshake(t: _Tracer, ls: ListenerServer, info: dict[str, Any]) -> None:
    """The terminating chain's certificate, as istiod would fetch it for this gateway pod."""
    cred = tlsmodel.credential(t.state, ls.server, t.proxy_ns)
    info["credential"] = {"name": cred.name, "namespace": cred.namespace, "status": cred.status}
    ref = ls.gateway.meta.ref
    secret = f"Secret {cred.namespace}/{cred.secret}"
    if cred.status == "mesh":
        t.add("tls-handshake", "ISTIO_MUTUAL: the gateway serves its own mesh certificate and requires a client "
              "certificate from the mesh CA (a client outside the mesh has none).", ref, uncertain=True)
    elif cred.status == "files":
        t.add("tls-handshake", "The certificate comes from file paths inside the gateway pod (serverCertificate/"
              "privateKey); whether they exist cannot be verified from configuration.", ref, uncertain=True)
    elif cred.status == "none":
        t.add("tls-handshake", "The server names no certificate (no credentialName, no file paths); admission "
              "rejects this, and Envoy has nothing to serve.", ref)
        _fail(t, info)
    elif cred.status == "denied":
        t.add("tls-handshake", f"credentialName '{cred.name}' names another namespace than the gateway pod's "
              f"({cred.namespace}); istiod refuses it (\"attempted to access unauthorized certificates\"), so the "
              "chain never gets a certificate and Envoy closes every connection on it (curl: (35)). Put the Secret in "
              f"{cred.namespace} and write the bare name.", ref)
        _fail(t, info)
    elif cred.status == "missing":
        where = (f" A Secret of that name exists in {', '.join(cred.elsewhere)}, but istiod only looks in the gateway "
                 f"pod's namespace {cred.namespace}." if cred.elsewhere else "")
        t.add("tls-handshake", f"The certificate is {secret} (credentialName, looked up in the gateway pod's "
              f"namespace), which does not exist. istiod logs 'failed to fetch key and certificate for "
              f"kubernetes://{cred.secret}' and sends nothing; Envoy closes every connection on this chain (curl: "
              f"(35)).{where}", ref)
        _fail(t, info)
    elif cred.status == "unknown":
        t.add("tls-handshake", f"The certificate is {secret} (credentialName, looked up in the gateway pod's "
              "namespace). Cannot verify that it exists: Secrets were not listed in this mode (add the Secret's "
              "manifest, or grant the optional secrets Role for live mode); the trace assumes it does.", ref,
              uncertain=True)
    else:
        t.add("tls-handshake", f"Envoy terminates TLS with {secret} (it exists; its keys and names are not read).",
              ref, f"Secret {cred.namespace}/{cred.secret}")
    mode = tlsmodel.mode_of(ls.server)
    if mode in ("MUTUAL", "OPTIONAL_MUTUAL"):
        t.add("tls-handshake", f"tls.mode {mode}: Envoy asks for a client certificate"
              + (" and refuses the handshake without one (curl: (56) ... alert certificate required); this trace "
                 "assumes the client sends a valid one." if mode == "MUTUAL" else " but accepts a client without one."),
              ref, uncertain=mode == "MUTUAL")
