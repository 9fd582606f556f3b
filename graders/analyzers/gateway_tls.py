"""TLS at the gateway (issue #14): certificates that are ignored, Secrets in the wrong namespace,
MUTUAL without a CA, and TLS host duplicates that istiod or Envoy resolve by dropping configuration.

- GW-TLS-CREDENTIAL-IGNORED: a certificate on a server that does not terminate TLS. An omitted
  ``tls.mode`` is PASSTHROUGH (enum value 0; IsPassThroughServer, pkg/config/gateway/gateway.go:69-80 at
  1.30.3), so an HTTPS server with only ``credentialName`` is a passthrough server: no TLS context, and
  its HTTP routes are never built (buildGatewayNetworkFiltersFromTLSRoutes). istioctl only warns at
  admission (IST0133 "PASSTHROUGH mode does not use certificates").
- GW-TLS-SECRET-NOT-FOUND: the Secret must be in the gateway *pod's* namespace (credentials are resolved
  against the proxy's identity, pilot/pkg/model/gateway.go:225-258; any other namespace is denied,
  pilot/pkg/xds/sds.go:292-302). Secrets are never read: existence comes from Secret metadata in the
  input; when the source did not list Secrets the finding says "cannot verify" at info level.
- GW-TLS-MUTUAL-NO-CA: MUTUAL/OPTIONAL_MUTUAL needs a CA (caCertificates, or ``<name>-cacert``, or a
  ``ca.crt``/``cacert`` key in the credential's Secret; pilot/pkg/credentials/kube/secrets.go).
- GW-CONFLICT (TLS): a repeated host inside one Gateway (the later server is dropped whole: mergeGateways,
  gateway.go:266-281), and duplicates that slip past that rule (``ns1/foo.com`` vs ``ns2/foo.com``,
  ``foo.com`` vs ``./foo.com``, ``*`` twice, passthrough sniHosts equal to a terminating server's host):
  equal filter-chain matches, which make Envoy reject the whole listener. Pairs of *different* Gateways
  are reported by gateway_conflicts, whose text for TLS pairs comes from ``duplicate_effect`` here.
"""

from __future__ import annotations

from collections.abc import Iterator

from graders import mesh, tlsmodel
from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.state import Gateway, Pod, Server, State


def _server(s: Server) -> str:
    return f"servers[{s.index}]" + (f" '{s.name}'" if s.name else "") + f" (port {s.port})"


def duplicate_effect(winner: Gateway, ws: Server, loser: Gateway, ls: Server) -> str | None:
    """What istiod does with two servers on one port sharing a host, when the TLS de-duplication
    applies (both have a tls block): the newer server dropped whole (identical sanitised host
    strings), or both kept with the same SNI, which Envoy rejects (names differ only by ``ns/``).
    None when it does not apply (the caller explains the HTTP or protocol merge instead)."""
    if ws.tls is None or ls.tls is None:
        return None
    wh = set(tlsmodel.sanitize_hosts(ws, winner.meta.namespace))
    lh = tlsmodel.sanitize_hosts(ls, loser.meta.namespace)
    same = [h for h in lh if h in wh]
    if same:
        return (f"Both servers have a tls block, so istiod keeps each host string once per port: it keeps "
                f"{winner.meta.key}'s server and drops the newer one of {loser.meta.key} ({_server(ls)}) whole, with "
                f"all its hosts ({', '.join(ls.hosts)}); istiod logs: skipping server on gateway {loser.meta.key}, "
                f"duplicate host names: [{' '.join(same)}]. Clients asking for its other hosts get no filter chain.")
    wsni = {h.lower() for h in tlsmodel.sni_names(tuple(wh))}
    lsni = {h.lower() for h in tlsmodel.sni_names(lh)}
    clash = sorted(wsni & lsni)
    if clash and mesh.protocol_family(ws.protocol) == mesh.protocol_family(ls.protocol) == "tls":
        return (f"The host strings differ ({', '.join(sorted(wh))} / {', '.join(lh)}), so istiod's duplicate check "
                f"lets both servers through, but both become filter chains for SNI {', '.join(clash)}. Envoy rejects "
                "the whole listener update (\"multiple filter chains with the same matching rules\"; istiod logs "
                "ADS:LDS: ACK ERROR): every host on this port keeps its previous configuration, or has none on a "
                "new gateway pod.")
    return None


def _credential_ignored(gw: Gateway, s: Server) -> Finding | None:
    tls = s.tls
    if tls is None or not (tls.credential or tls.cert_files):
        return None
    mode = tlsmodel.mode_of(s)
    if mode not in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
        return None
    written = tls.mode is not None
    cred = f"'{tls.credential}'" if tls.credential else "files (serverCertificate/privateKey)"
    if mesh.protocol_family(s.protocol) == "http":
        why, consequence = "a plain HTTP server never terminates TLS, so", " (tls on an HTTP server only carries " \
            "httpsRedirect)."
        fix = "Remove credentialName from the HTTP server and put it on an HTTPS server with tls.mode: SIMPLE."
    else:
        why = ("tls.mode is PASSTHROUGH, so" if written else
               "tls.mode is not written, and an omitted mode means PASSTHROUGH (its enum value 0), so")
        consequence = (": clients get the certificate of whatever the connection is passed to, and http routes "
                       "bound to this server are never built (a passthrough server only uses VirtualService tls "
                       "routes with sniHosts; with none it has no filter chain at all).")
        fix = ("Add `mode: SIMPLE` under tls to terminate HTTPS here with this certificate (MUTUAL to also require "
               "client certificates)" + (", " if not written else ", or remove the certificate and route with "
                                         "VirtualService tls: sniHosts for real passthrough, ")
               + "and check with `python -m graders trace FILES --port 443 --host HOST --tls`.")
    return finding("GW-TLS-CREDENTIAL-IGNORED", [gw.meta.ref], origin=gw.meta.origin, server=_server(s),
                   gateway=gw.meta.key, protocol=s.protocol, mode=mode if written else "omitted",
                   credential=cred, why=why, consequence=consequence, fix=fix)


def _secret(state: State, gw: Gateway, s: Server, pod: Pod, workload: str) -> Finding | None:
    if s.tls is None or not s.tls.credential or tlsmodel.mode_of(s) not in tlsmodel.TERMINATING:
        return None
    if tlsmodel.mode_of(s) == "ISTIO_MUTUAL":
        return None
    pod_ns = pod.meta.namespace
    cred = tlsmodel.credential(state, s, pod_ns)
    name = cred.secret
    common = dict(server=_server(s), gateway=gw.meta.key, credential=cred.name, workload=workload,
                  pod_ns=pod_ns, name=name)
    create = (f"Create it there: `kubectl create -n {pod_ns} secret tls {name} --cert=CERT --key=KEY` (the Gateway "
              "may stay in its own namespace; the Secret follows the gateway pod).")
    if cred.status == "denied":
        return finding("GW-TLS-SECRET-NOT-FOUND", [gw.meta.ref], origin=gw.meta.origin, **common,
                       problem=(f"The value names another namespace ({tlsmodel.secret_ref(cred.name, pod_ns)[0]}); "
                                "istiod refuses "
                                "credentials outside the gateway pod's namespace (\"attempted to access "
                                "unauthorized certificates\"), so this server never gets a certificate and every "
                                "handshake on it is closed."),
                       fix=f"Write the bare name '{name}' and keep the Secret in {pod_ns}. {create}")
    if cred.status == "missing":
        where = (f"A Secret named {name} exists in {', '.join(cred.elsewhere)}, but istiod never looks there."
                 if cred.elsewhere else "No Secret of that name exists in the input.")
        return finding("GW-TLS-SECRET-NOT-FOUND", [gw.meta.ref], origin=gw.meta.origin, **common,
                       problem=(f"It does not exist. {where} istiod logs 'failed to fetch key and certificate for "
                                f"kubernetes://{name}' and Envoy closes every handshake on this server (curl: (35))."),
                       fix=create)
    if cred.status == "unknown":
        return finding("GW-TLS-SECRET-NOT-FOUND", [gw.meta.ref], origin=gw.meta.origin, severity="info", **common,
                       problem=("Cannot verify that it exists: Secrets were not listed from this source (the "
                                "graders never read Secret data; include the Secret's manifest, or grant the "
                                "optional secrets-metadata Role for live mode)."),
                       fix=f"Check with `kubectl get secret {name} -n {pod_ns}` (the table shows no key material).")
    return None


def _mutual(state: State, gw: Gateway, s: Server, pod_ns: str) -> Finding | None:
    mode = tlsmodel.mode_of(s)
    if s.tls is None or mode not in ("MUTUAL", "OPTIONAL_MUTUAL"):
        return None
    common = dict(server=_server(s), gateway=gw.meta.key, mode=mode)
    ca_name = s.tls.ca_credential.removeprefix("kubernetes://")
    if ca_name and not ca_name.endswith("-cacert"):
        # isCAOnlySecret is decided by the suffix alone (pilot/pkg/xds/sds.go:182-213 at 1.30.3): any other
        # name is fetched as a certificate+key Secret (GetCertInfo), which a CA-only Secret is not.
        return finding("GW-TLS-MUTUAL-NO-CA", [gw.meta.ref], origin=gw.meta.origin, **common,
                       problem=(f"Its caCertCredentialName '{s.tls.ca_credential}' does not end in -cacert, so istiod "
                                "fetches it as a certificate and key (only a name ending in -cacert is read as a "
                                "CA alone): a Secret holding only ca.crt fails with 'didn't have expected keys', "
                                "and client certificates cannot be checked."),
                       fix=f"Name the CA Secret {ca_name}-cacert (key ca.crt or cacert) and point "
                           "caCertCredentialName at it, or drop caCertCredentialName and put ca.crt in the "
                           "credentialName Secret.")
    if s.tls.ca:
        return None
    if not s.tls.credential:
        # Neither caCertificates nor a credentialName: istiod's webhook refuses the Gateway (validateTLSOptions,
        # "MUTUAL TLS requires a client CA bundle"), so it is MANIFEST-INVALID (graders/istio_validation.py).
        return None
    name = tlsmodel.secret_ref(s.tls.credential, pod_ns)[1]
    if state.secrets_known and tlsmodel.find_secret(state, pod_ns, f"{name}-cacert") is not None:
        return None
    return finding("GW-TLS-MUTUAL-NO-CA", [gw.meta.ref], origin=gw.meta.origin, severity="info", **common,
                   problem=(f"The CA must then come from Secret {pod_ns}/{name}-cacert (key cacert or ca.crt), "
                            f"which {'does not exist' if state.secrets_known else 'cannot be verified'}, or from a "
                            f"ca.crt/cacert key in Secret {pod_ns}/{name}, which cannot be verified (Secret data is "
                            "never read). Without a CA, istiod logs 'failed to fetch ca certificate' and every "
                            "handshake on this server fails."),
                   fix=(f"Make sure Secret {name} holds ca.crt (`kubectl create -n {pod_ns} secret generic {name} "
                        "--from-file=tls.crt=... --from-file=tls.key=... --from-file=ca.crt=...`), or create "
                        f"{name}-cacert."))


def _duplicates(state: State, pod: Pod, workload: str) -> Iterator[Finding]:
    groups, _ = state.memo(("listeners", id(pod)), lambda: mesh.listeners_for_pod(state, pod))
    for (port, bind), servers in groups.items():
        kept, dropped = tlsmodel.dedupe(servers)
        for d in dropped:
            if d.ls.gateway is d.holder.gateway:  # different Gateways: gateway_conflicts reports the pair
                yield _conflict(d.holder, d.ls, workload, port, bind, duplicate_effect(
                    d.holder.gateway, d.holder.server, d.ls.gateway, d.ls.server) or "", d.duplicates)
        merged, _, _ = mesh.merge_port(kept)
        chains = tlsmodel.build_chains(state, merged, pod.meta.namespace)
        for a, b in tlsmodel.conflicts(chains.chains):
            if a.ls.gateway is not b.ls.gateway and a.kind != "passthrough" and b.kind != "passthrough":
                continue  # two Gateways' servers: reported by gateway_conflicts (duplicate_effect)
            names = sorted(set(a.sni or ("*",)) & set(b.sni or ("*",))) or ["* (no server_names)"]
            yield _conflict(a.ls, b.ls, workload, port, bind, (
                f"They become two filter chains for the same SNI ({a.label}; {b.label}). istiod's duplicate "
                "check compares host strings (and passthrough sniHosts only with each other), so it lets both "
                "through; Envoy rejects the whole listener update (\"multiple filter chains with the same matching "
                "rules\"; istiod logs ADS:LDS: ACK ERROR): every host on this port keeps its previous "
                "configuration, or has none on a new gateway pod."), tuple(names))


def _conflict(first: mesh.ListenerServer, second: mesh.ListenerServer, workload: str, port: int, bind: str,
              text: str, hosts: tuple[str, ...]) -> Finding:
    w, lo = first.gateway, second.gateway
    return finding(
        "GW-CONFLICT", list(dict.fromkeys([lo.meta.ref, w.meta.ref])), origin=lo.meta.origin, winner=w.meta.key,
        loser=lo.meta.key, workload=workload, listener=port, winner_port=first.server.port,
        loser_port=second.server.port, hosts=", ".join(hosts), overlap=f"the TLS host(s) {', '.join(hosts)}",
        bind=f" (bind {bind})" if bind else "",
        effect=text + (f" (Both servers are in {w.meta.key}: {_server(first.server)} and {_server(second.server)}.)"
                       if w is lo else ""))


def run(state: State) -> Iterator[Finding]:
    for gw in state.ordered_gateways:
        for s in gw.servers:
            f = _credential_ignored(gw, s)
            if f is not None:
                yield f
        for workload, pods in mesh.workloads(mesh.gateway_pods(state, gw)).items():
            for s in gw.servers:
                for f in (_secret(state, gw, s, pods[0], workload), _mutual(state, gw, s, pods[0].meta.namespace)):
                    if f is not None:
                        yield f
    seen: set[str] = set()
    for gw in state.ordered_gateways:
        for workload, pods in mesh.workloads(mesh.gateway_pods(state, gw)).items():
            if workload not in seen:
                seen.add(workload)
                yield from _duplicates(state, pods[0], workload)


ANALYZER = Analyzer("gateway-tls", ("Gateway", "VirtualService", "Pod", "Deployment", "Service", "Secret"),
                    # also emits GW-CONFLICT for TLS duplicates; that code is declared once, by gateway-conflicts
                    ("GW-TLS-CREDENTIAL-IGNORED", "GW-TLS-SECRET-NOT-FOUND", "GW-TLS-MUTUAL-NO-CA"), run)
