"""How istiod turns the TLS servers of the Gateways on one listener into Envoy filter chains, and how
Envoy picks one for a ClientHello (Istio 1.30.3). Pure functions over the State, shared by the TLS
trace (``trace_tls``) and the TLS analyzers (``analyzers/gateway_tls``), so both tell the same story.

Sources (istio/istio at 1.30.3; unchanged since 1.30.0, see shared/reference/istio-tls-facts.md):
- host rewriting ``./h`` -> ``<gw-ns>/h``, ``*/h`` -> ``h``, ``*/*`` -> ``*``: sanitizeServerHostNamespace,
  pilot/pkg/model/gateway.go:654-675;
- TLS host de-duplication over the *sanitised strings* of every server with a ``tls`` block (HTTPS, TLS,
  and HTTP with httpsRedirect), per resolved port and bind; a server with any taken host is skipped
  whole, with the log line "skipping server on gateway <ns>/<name>, duplicate host names: [...]":
  mergeGateways, gateway.go:266-281, CheckDuplicates :560-574;
- SNI names of a server: its hosts without ``ns/``, de-duplicated, sorted; a ``*`` among them makes
  the chain match everything: GetSNIHostsForServer gateway.go:541-556, toFilterChainMatch
  pilot/pkg/networking/core/listener.go:1273-1309;
- the HTTPS route table ``https.<declared port>.<port name>.<gateway>.<ns>``: gatewayRDSRouteName
  gateway.go:604-620;
- passthrough chains: one per VirtualService ``tls`` match (its sniHosts), a repeated SNI skipped with
  "skipping VirtualService <vs> rule #<i> on server port <p> of gateway <gw>, duplicate SNI host names":
  buildGatewayNetworkFiltersFromTLSRoutes, pilot/pkg/networking/core/gateway.go:900-975;
- the credential: ``kubernetes://<name>`` looked up in the gateway *pod's* namespace; any other
  namespace is denied: mergeGateways gateway.go:225-258, pilot/pkg/xds/sds.go:292-302.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graders import mesh
from graders.mesh import ListenerServer
from graders.state import SecretRef, Server, State, VirtualService

TERMINATING = ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL", "ISTIO_MUTUAL")
PASSTHROUGH = (None, "PASSTHROUGH")  # an omitted mode is PASSTHROUGH (enum value 0)


def mode_of(server: Server) -> str:
    """The effective tls.mode ("PASSTHROUGH" when the tls block leaves it out)."""
    return (server.tls.mode if server.tls is not None else None) or "PASSTHROUGH"


def sanitize_hosts(server: Server, gateway_ns: str) -> tuple[str, ...]:
    """The server's hosts as mergeGateways compares them (sanitizeServerHostNamespace)."""
    out: list[str] = []
    for h in server.hosts:
        if "/" in h:
            ns, _, name = h.partition("/")
            if ns == ".":
                h = f"{gateway_ns}/{name}"
            elif ns == "*":
                if name == "*":
                    return ("*",)
                h = name
        out.append(h)
    return tuple(out)


def sni_names(hosts: tuple[str, ...]) -> tuple[str, ...]:
    """GetSNIHostsForServer: hosts without their ``ns/`` part, de-duplicated and sorted."""
    return tuple(sorted({h.split("/", 1)[1] if "/" in h else h for h in hosts}))


def route_name(ls: ListenerServer) -> str:
    s, g = ls.server, ls.gateway
    return f"https.{s.port}.{s.port_name}.{g.meta.name}.{g.meta.namespace}" + (f".{s.bind}" if s.bind else "")


@dataclass(frozen=True)
class Dropped:
    """A server istiod skipped because one of its hosts was already taken on this port and bind."""

    ls: ListenerServer
    duplicates: tuple[str, ...]
    holder: ListenerServer  # the earlier server that holds the first duplicate host

    @property
    def log_line(self) -> str:
        return (f"skipping server on gateway {self.ls.gateway.meta.key}, duplicate host names: "
                f"[{' '.join(self.duplicates)}]")


def dedupe(servers: list[ListenerServer]) -> tuple[list[ListenerServer], list[Dropped]]:
    """CheckDuplicates over the servers of one (resolved port, bind), in merge order: servers without a
    ``tls`` block always pass; a server with one is dropped whole if any sanitised host is taken."""
    known: dict[str, ListenerServer] = {}
    kept: list[ListenerServer] = []
    dropped: list[Dropped] = []
    for ls in servers:
        if ls.server.tls is None:
            kept.append(ls)
            continue
        hosts = sanitize_hosts(ls.server, ls.gateway.meta.namespace)
        dups = tuple(h for h in hosts if h in known)
        if dups:
            dropped.append(Dropped(ls, dups, known[dups[0]]))
            continue
        for h in hosts:
            known[h] = ls
        kept.append(ls)
    return kept, dropped


@dataclass(frozen=True)
class Chain:
    """One Envoy filter chain on the listener."""

    ls: ListenerServer
    kind: str  # https | tls-terminate | passthrough | http | tcp
    sni: tuple[str, ...] | None  # None: no server_names (matches any or no SNI)
    vs: VirtualService | None = None
    rule: object | None = None  # the TcpRoute or TlsRoute whose destinations the chain forwards to
    match_index: int = 0

    @property
    def label(self) -> str:
        names = "any SNI (no server_names)" if self.sni is None else ", ".join(self.sni)
        return f"{self.kind} chain of {self.ls.gateway.meta.key} ({names})"


@dataclass
class Chains:
    chains: list[Chain] = field(default_factory=list)
    notes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (sentence, objects)

    def note(self, text: str, *objects: str) -> None:
        self.notes.append((text, tuple(objects)))


def _sni_or_all(names: tuple[str, ...]) -> tuple[str, ...] | None:
    return None if not names or "*" in names else tuple(sorted({n.lower() for n in names}))


def _tcp_rule(state: State, ls: ListenerServer, proxy_ns: str) -> tuple[VirtualService, object] | None:
    """buildGatewayNetworkFiltersFromTCPRoutes: the first bound VirtualService (istiod's order) whose
    host matches the server and which has a ``tcp`` rule matching port and gateway."""
    for vs in mesh.virtual_services_for_proxy(state, ls.gateway.meta.key, proxy_ns):
        if mesh.tcp_hosts_match(ls.server, ls.gateway, vs):
            for rule in vs.tcp:
                if mesh.l4_matches(rule, ls.server, ls.gateway, vs):
                    return vs, rule
    return None


def _tls_match(sni: tuple[str, ...], port: int | None, gws: tuple[str, ...], ls: ListenerServer,
               vs: VirtualService) -> bool:
    """l4SingleMatch on a tls match (convertTLSMatchToL4Match): port unset or the declared server port,
    gateways unset or naming this Gateway."""
    return (port is None or port == ls.server.port) and (
        not gws or ls.gateway.meta.key in {mesh.resolve_gateway_ref(g, vs.meta.namespace) for g in gws})


def build_chains(state: State, servers: list[ListenerServer], proxy_ns: str) -> Chains:
    """The filter chains istiod builds for the kept servers of one listener (after dedupe and the
    protocol merge), in its order."""
    out = Chains()
    sni_seen: dict[str, str] = {}
    for ls in servers:
        s, gw = ls.server, ls.gateway
        family = mesh.protocol_family(s.protocol)
        if family == "http":
            out.chains.append(Chain(ls, "http", None))
            continue
        if family != "tls":
            found = _tcp_rule(state, ls, proxy_ns)
            if found:
                out.chains.append(Chain(ls, "tcp", None, found[0], found[1]))
            continue
        mode = mode_of(s)
        hosts = sni_names(sanitize_hosts(s, gw.meta.namespace))
        if mode in TERMINATING and s.protocol == "HTTPS":
            out.chains.append(Chain(ls, "https", _sni_or_all(hosts)))
        elif mode in TERMINATING:
            found = _tcp_rule(state, ls, proxy_ns)
            if found:
                out.chains.append(Chain(ls, "tls-terminate", _sni_or_all(hosts), found[0], found[1]))
            else:
                out.note(f"The TLS server of {gw.meta.key} terminates TLS but no bound VirtualService has a "
                         f"matching tcp route, so istiod builds no filter chain for it (log: gateway "
                         f"{gw.meta.key}:{s.port} listener missed network filter).", gw.meta.ref)
        elif mode == "AUTO_PASSTHROUGH":
            out.note(f"The AUTO_PASSTHROUGH server of {gw.meta.key} only has chains for SNI names of the form "
                     "outbound_.<port>_.<subset>_.<service FQDN> (multi-network east-west traffic); an ordinary "
                     "host name matches none of them.", gw.meta.ref)
        else:
            _passthrough_chains(state, ls, proxy_ns, out, sni_seen)
    return out


def _passthrough_chains(state: State, ls: ListenerServer, proxy_ns: str, out: Chains,
                        sni_seen: dict[str, str]) -> None:
    gw = ls.gateway
    before = len(out.chains)
    for vs in mesh.virtual_services_for_proxy(state, gw.meta.key, proxy_ns):
        if not mesh.tcp_hosts_match(ls.server, gw, vs):
            continue
        for rule in vs.tls:
            for i, (sni, port, gws) in enumerate(rule.matches):
                if not _tls_match(sni, port, gws, ls, vs):
                    continue
                dups = [h for h in sni if h in sni_seen]
                if dups:
                    out.note(f"istiod skips tls[{rule.index}] match {i} of {vs.meta.key}: its sniHosts "
                             f"{', '.join(dups)} already have a chain (log: skipping VirtualService {vs.meta.name} "
                             f"rule #{i} on server port {ls.server.port} of gateway {gw.meta.key}, duplicate SNI "
                             f"host names: [{' '.join(dups)}]).", vs.meta.ref)
                    continue
                for h in sni:
                    sni_seen[h] = vs.meta.key
                out.chains.append(Chain(ls, "passthrough", _sni_or_all(sni), vs, rule, i))
    if len(out.chains) == before:
        out.note(f"The {ls.server.protocol} server {gw.meta.key} servers[{ls.server.index}] is a passthrough server "
                 "(tls.mode "
                 f"{ls.server.tls.mode if ls.server.tls and ls.server.tls.mode else 'omitted, so PASSTHROUGH'}) and no "
                 "bound VirtualService has a matching tls route (sniHosts), so istiod builds no filter chain for "
                 "it; http routes are never used on a passthrough server.", gw.meta.ref)


def conflicts(chains: list[Chain]) -> list[tuple[Chain, Chain]]:
    """Pairs of chains Envoy would see with the same match (equal server_names after lower-casing, or
    two without any): Envoy rejects the whole listener ("multiple filter chains with the same
    matching rules are defined"; filter_chain_manager_impl.cc)."""
    seen: dict[tuple[str, ...] | None, Chain] = {}
    out = []
    for c in chains:
        for name in (c.sni if c.sni is not None else (None,)):
            key = (name,) if name is not None else None
            if key in seen and seen[key] is not c:
                out.append((seen[key], c))
                break
            seen.setdefault(key, c)
    return out


def sni_rank(name: str, sni: str) -> tuple[int, int] | None:
    """Envoy's server_names match: exact beats a wildcard, the longest wildcard suffix first; a
    ``*.`` wildcard may stand for several labels."""
    name, sni = name.lower(), sni.lower()
    if name == sni:
        return (2, len(name))
    if name.startswith("*.") and sni.endswith(name[1:]) and len(sni) > len(name) - 1:
        return (1, len(name))
    return None


def select(chains: list[Chain], sni: str | None) -> Chain | None:
    """The chain Envoy picks for a ClientHello with ``sni`` (None: no SNI sent)."""
    best: tuple[tuple[int, int], Chain] | None = None
    fallback = next((c for c in chains if c.sni is None), None)
    if sni is None:
        return fallback
    for c in chains:
        for name in c.sni or ():
            rank = sni_rank(name, sni)
            if rank is not None and (best is None or rank > best[0]):
                best = (rank, c)
    return best[1] if best else fallback


@dataclass(frozen=True)
class Credential:
    """Where istiod looks for a server's certificate, and whether it can be found."""

    name: str  # as written
    namespace: str  # the namespace istiod looks in (the gateway pod's)
    status: str  # found | missing | denied | unknown | files | mesh | none
    elsewhere: tuple[str, ...] = ()  # namespaces where a Secret of that name exists instead
    secret: str = ""  # the Secret's bare name


def secret_ref(written: str, pod_ns: str) -> tuple[str, str]:
    """(namespace, name) of a credentialName as istiod parses it (credentials.ToResourceName and
    ParseResourceName, pilot/pkg/model/credentials/resource.go): a bare name or kubernetes://[ns/]name;
    the namespace defaults to the proxy's."""
    ref = written.removeprefix("kubernetes://")
    ns, sep, name = ref.partition("/")
    return (ns, name) if sep else (pod_ns, ref)


def credential(state: State, server: Server, pod_ns: str) -> Credential:
    tls = server.tls
    if tls is None:
        return Credential("", pod_ns, "none")
    if mode_of(server) == "ISTIO_MUTUAL":
        return Credential("", pod_ns, "mesh")
    if not tls.credential:
        return Credential("", pod_ns, "files" if tls.cert_files else "none")
    ns, name = secret_ref(tls.credential, pod_ns)
    if ns != pod_ns:
        return Credential(tls.credential, pod_ns, "denied", secret=name)
    return secret_status(state, name, pod_ns, tls.credential)


def secret_status(state: State, name: str, ns: str, written: str) -> Credential:
    if not state.secrets_known:
        return Credential(written, ns, "unknown", secret=name)
    here = [s for s in state.secrets if s.meta.name == name]
    if any(s.meta.namespace == ns for s in here):
        return Credential(written, ns, "found", secret=name)
    return Credential(written, ns, "missing", tuple(sorted({s.meta.namespace for s in here})), name)


def find_secret(state: State, ns: str, name: str) -> SecretRef | None:
    return next((s for s in state.secrets if s.meta.namespace == ns and s.meta.name == name), None)
