"""VirtualService -> Gateway binding: the reference resolves, and the hosts meet.

A reference resolves as istiod's resolveGatewayName does (pilot/pkg/model/config.go:233-261):
``ns/name`` as written (``./name``, which resolveGatewayName reads as the VirtualService's namespace,
is refused by istiod's webhook and so is MANIFEST-INVALID here), a name without a namespace
means the VirtualService's own namespace (not the Gateway's), the most common cross-namespace
mistake, and the legacy ``name.ns[.svc.cluster.local]`` means ``ns/name``. The suggestion names the
Gateway the learner probably meant.

Host checks honour wildcards and the ``ns/host`` prefixes of Gateway servers, per server: a host
offered only to another namespace does not count. istioctl's IST0132
(pkg/config/analysis/analyzers/virtualservice/gateways.go:91-99, 103-133) filters the same way, through
host.NamesForNamespace (gateways.go:120; a host whose ``ns/`` prefix names another namespace is dropped, ``./`` is
the Gateway's namespace), but pools the hosts of all servers, and when a server lists ``*/*`` it
replaces that server's hosts with ``*`` (sanitizeServerHostNamespace, gateways.go:138-153). It
also reports IST0132 next to IST0101 when the Gateway does not exist; here a missing Gateway is
one finding, VS-GATEWAY-NOT-FOUND.

Hosts are compared as istiod binds them, the way the request trace does (mesh.server_allows): a short
VirtualService host is first expanded to ``<name>.<VirtualService namespace>.svc.cluster.local``
(ResolveVirtualServiceShortnames, pilot/pkg/model/virtualservice.go:128), then matched against the
server hosts (pickMatchingGatewayHosts, pilot/pkg/networking/core/gateway.go:1052). istioctl's IST0132
compares them as written (gateways.go:117-129), so it disagrees on short hosts; istiod is the truth."""

from __future__ import annotations

from collections.abc import Iterator

from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.mesh import (
    MESH,
    hosts_intersect,
    resolve_gateway_ref,
    server_allows,
    split_server_host,
    vs_gateway_refs,
    vs_hosts,
)
from graders.state import Gateway, State, VirtualService


def _how(ref: str, vs: VirtualService) -> str:
    """Why the reference resolves where it does, in the words of resolveGatewayName."""
    if "/" in ref:  # istiod's webhook refuses './name' (MANIFEST-INVALID), so ns is a namespace name
        return ""
    if "." in ref:
        return " (the legacy form name.namespace)"
    return f" (a name without a namespace means the VirtualService's own namespace, {vs.meta.namespace})"


def _suggestion(state: State, vs: VirtualService, ref: str, resolved: str) -> str:
    name = resolved.split("/", 1)[1]
    others = sorted(g.meta.key for g in state.gateways_by_name.get(name, ()))
    if others:
        spaces = ", ".join(k.split("/", 1)[0] for k in others)
        return (f"A Gateway named {name} exists in namespace {spaces}: reference it as '{others[0]}' "
                "(<namespace>/<name>) in spec.gateways.")
    names = sorted(state.gateways_by_key)[:5]
    return ("Create the Gateway, or fix the name in spec.gateways; existing Gateways: "
            + (", ".join(names) if names else "none") + ".")


def _shown_hosts(vs: VirtualService) -> str:
    """The VirtualService's hosts as written, each short one with the name istiod binds it as."""
    shown = [h if h == fq else f"{h} (= {fq})" for h, fq in zip(vs.hosts, vs_hosts(vs), strict=True)]
    return ", ".join(shown) or "(none)"


def _host_fix(gw: Gateway, vs: VirtualService) -> tuple[str, str]:
    """(hosts the Gateway offers this VirtualService, the fix to suggest)."""
    offered, blocked = [], []
    for server in gw.servers:
        for raw in server.hosts:
            ns, dns = split_server_host(raw, gw.meta.namespace)
            (offered if ns in ("*", vs.meta.namespace) else blocked).append((ns, dns))
    if blocked and any(hosts_intersect(dns, h) for _, dns in blocked for h in vs_hosts(vs)):
        allowed = sorted({ns for ns, _ in blocked})
        return (", ".join(f"{ns}/{d}" for ns, d in blocked),
                f"The Gateway only lets VirtualServices from namespace {', '.join(allowed)} bind to those hosts; "
                f"move the VirtualService there or change the Gateway host prefix to {vs.meta.namespace}/ or */.")
    hosts = ", ".join(dict.fromkeys(d for _, d in offered)) or "none"
    return hosts, (f"Add one of the Gateway's hosts ({hosts}) to the VirtualService's spec.hosts, or add "
                   f"{vs.hosts[0] if vs.hosts else 'its host'} to the Gateway server's hosts.")


def run(state: State) -> Iterator[Finding]:
    for vs in state.virtual_services:
        refs = list(dict.fromkeys(vs.gateways)) + [
            g for r in vs.http for m in r.matches for g in m.gateways if g not in vs.gateways]
        for ref in refs:
            resolved = resolve_gateway_ref(ref, vs.meta.namespace)
            if resolved == MESH:
                continue
            gw = state.gateways_by_key.get(resolved)
            if gw is None:
                yield finding("VS-GATEWAY-NOT-FOUND", [vs.meta.ref], origin=vs.meta.origin, vs=vs.meta.key, ref=ref,
                              resolved=f"Gateway {resolved}", how=_how(ref, vs),
                              suggestion=_suggestion(state, vs, ref, resolved))
                continue
            if resolved not in vs_gateway_refs(vs):
                continue  # referenced only from a match; binding is decided by spec.gateways
            if not any(server_allows(s, gw, vs) for s in gw.servers):  # the binding the trace uses
                gw_hosts, fix = _host_fix(gw, vs)
                yield finding("VS-HOST-NOT-IN-GATEWAY", [vs.meta.ref, gw.meta.ref], origin=vs.meta.origin,
                              vs=vs.meta.key, gateway=gw.meta.key, vs_hosts=_shown_hosts(vs),
                              gw_hosts=gw_hosts, fix=fix)


ANALYZER = Analyzer("virtualservice-gateways", ("VirtualService", "Gateway"),
                    ("VS-GATEWAY-NOT-FOUND", "VS-HOST-NOT-IN-GATEWAY"), run)
