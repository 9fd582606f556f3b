"""GW-CONFLICT: two Gateways programming the same listener of the same workload.

Stronger than IST0145 in three ways, each a real source of confusion:
- ports are compared after istiod's Service-port -> targetPort translation, so a Gateway on 80
  and one on 8080 collide on the default gateway (IST0145 compares declared ports);
- hosts overlap by wildcard (``*`` against anything, ``*.example.com`` against
  ``foo.example.com``), not only by identical strings;
- the finding names the winner (oldest creationTimestamp, then name, then namespace: istiod's
  merge order) and the effect (HTTP: merged, older route wins a shared path; HTTPS/TLS with an
  identical host: the newer server is dropped; another protocol on the port, or a second plain TCP
  server whatever its hosts: rejected, pilot/pkg/model/gateway.go:296-301).

It is linear in the number of servers: each new host is looked up in indexes of the hosts seen
before it (exact names, wildcard suffixes, and every proper suffix of a seen name), so finding
the oldest overlapping server costs O(labels in the host), not a scan of all earlier servers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.mesh import (
    bound_virtual_services,
    can_merge,
    gateway_pods,
    hosts_intersect,
    privileged_dropped,
    protocol_family,
    resolve_listener_port,
    split_server_host,
    workload_ref,
    workloads,
)
from graders.state import Gateway, Server, State


@dataclass(frozen=True)
class Entry:
    order: int
    gateway: Gateway
    server: Server
    host: str  # dnsName part, lower-cased


@dataclass
class HostIndex:
    """First entries (from at most two distinct Gateways) seen per key, in merge order."""

    exact: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))
    wildcard: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))  # "*.s" -> by s
    suffix: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))  # proper suffixes
    star: list[Entry] = field(default_factory=list)
    any: list[Entry] = field(default_factory=list)

    @staticmethod
    def _keep(bucket: list[Entry], entry: Entry) -> None:
        if len(bucket) < 2 and all(e.gateway is not entry.gateway for e in bucket):
            bucket.append(entry)

    def add(self, entry: Entry) -> None:
        h = entry.host
        self._keep(self.any, entry)
        if h == "*":
            self._keep(self.star, entry)
            return
        self._keep(self.exact[h], entry)
        labels = h.split(".")
        if labels[0] == "*":
            self._keep(self.wildcard[".".join(labels[1:])], entry)
        for i in range(1, len(labels)):
            self._keep(self.suffix[".".join(labels[i:])], entry)

    def oldest_overlap(self, entry: Entry) -> Entry | None:
        h = entry.host
        buckets: list[list[Entry]] = [self.star]
        if h == "*":
            buckets.append(self.any)
        else:
            labels = h.split(".")
            buckets.append(self.exact.get(h, []))
            if labels[0] == "*":
                rest = labels[1:]
                # seen *.t with t a suffix of (or equal to) our s; seen names and wildcards under .s
                buckets.extend(self.wildcard.get(".".join(rest[i:]), []) for i in range(len(rest)))
                buckets.append(self.suffix.get(".".join(rest), []))
            else:
                # seen *.t covering h: t is a proper suffix of h
                buckets.extend(self.wildcard.get(".".join(labels[i:]), []) for i in range(1, len(labels)))
        candidates = [e for b in buckets for e in b if e.gateway is not entry.gateway]
        return min(candidates, key=lambda e: e.order, default=None)


MERGE_ORDER = "istiod merges Gateways oldest first (creationTimestamp, then name, then namespace)"


def _more_specific(a: Entry, b: Entry) -> Entry:
    """The entry whose host Envoy prefers for the names both cover (exact beats wildcard, longer
    wildcard beats shorter)."""
    def rank(e: Entry) -> tuple[int, int]:
        return (0 if e.host.startswith("*") else 1, len(e.host))
    return a if rank(a) >= rank(b) else b


def _vs_domains(state: State, e: Entry, proxy_ns: str) -> set[str]:
    return {d.lower() for _, ds in bound_virtual_services(state, e.gateway, e.server, proxy_ns) for d in ds}


def effect(state: State, winner: Entry, loser: Entry, identical: bool, proxy_ns: str) -> tuple[str, str]:
    """(severity, sentences) describing what istiod and Envoy do with the pair."""
    from graders.analyzers.gateway_tls import duplicate_effect  # h9-tls: TLS host de-duplication

    tls_text = duplicate_effect(winner.gateway, winner.server, loser.gateway, loser.server)
    if tls_text is not None:
        return "error", tls_text
    fw, fl = protocol_family(winner.server.protocol), protocol_family(loser.server.protocol)
    w, lo = winner.gateway.meta.key, loser.gateway.meta.key
    if fw == fl and fw not in ("http", "tls"):
        return "error", (f"A plain {winner.server.protocol} listener cannot be shared: {MERGE_ORDER}, so istiod keeps "
                         f"{w}'s server and skips the newer one of {lo} whatever its hosts (\"conflict with existing "
                         "server\", pilot/pkg/model/gateway.go:298; canMergeProtocols, :513): a TCP connection carries "
                         "no Host header or SNI to choose between them.")
    if fw != fl:
        return "error", (f"The listener already serves {winner.server.protocol} from {w} (merged first: "
                         f"{MERGE_ORDER}), so istiod rejects the newer {loser.server.protocol} server of {lo} entirely "
                         "(\"conflict with existing server\").")
    if not identical:
        specific = _more_specific(winner, loser)
        broad = loser if specific is winner else winner
        kind = "SNI" if fw == "tls" else "Host header"
        return "warning", (f"The host names differ, so nothing is merged: Envoy picks the most specific match for "
                           f"each request's {kind}. {specific.gateway.meta.key} takes {specific.host}; the "
                           f"`{broad.host}` of {broad.gateway.meta.key} answers every other name it covers, "
                           "including names never meant for it.")
    if fw == "http":
        mine, theirs = _vs_domains(state, winner, proxy_ns), _vs_domains(state, loser, proxy_ns)
        if mine and theirs and not any(hosts_intersect(a, b) for a in mine for b in theirs):
            return "warning", (f"Today their VirtualServices use distinct hosts ({', '.join(sorted(mine))} / "
                               f"{', '.join(sorted(theirs))}), so Envoy keeps separate virtual hosts and nothing is "
                               "shadowed; a VirtualService with an overlapping host bound to either Gateway would "
                               f"merge, and then {w}'s routes would win shared paths ({MERGE_ORDER}).")
        return "error", (f"{MERGE_ORDER}, so {w} wins: their HTTP routes are merged into one route table, and for "
                         f"any path both route, the VirtualService bound to {w} wins; the other's route for that "
                         "path is never used (catch-all routes such as prefix / are moved last).")
    return "error", (f"For TLS the host {winner.host} may appear once per port: {MERGE_ORDER}, so istiod keeps "
                     f"{w}'s server and drops the newer one of {lo} (\"duplicate host names\").")


def run(state: State) -> Iterator[Finding]:
    groups: dict[tuple[str, int, str], list[Entry]] = defaultdict(list)
    order = 0
    refs: dict[str, str] = {}
    for gw in state.ordered_gateways:
        for workload, pods in workloads(gateway_pods(state, gw)).items():
            pod = pods[0]
            refs[workload] = workload_ref(pod)
            for server in gw.servers:
                listener = resolve_listener_port(state, pod, server.port).listener
                if privileged_dropped(pod, listener):
                    continue  # never becomes a listener; GW-PORT-PRIVILEGED explains it
                for raw in server.hosts:
                    _, dns = split_server_host(raw, gw.meta.namespace)
                    order += 1
                    groups[(workload, listener, server.bind)].append(Entry(order, gw, server, dns.lower()))
    for (workload, listener, bind), entries in groups.items():
        if len({id(e.gateway) for e in entries}) < 2:
            continue
        # Hosts overlap only within a protocol family: TLS servers that came before the port's plain-text
        # server sit beside it as separate filter chains (mesh.merge_port).
        indexes: dict[str, HostIndex] = defaultdict(HostIndex)
        plain: Entry | None = None
        pairs: dict[tuple[str, str], tuple[Entry, Entry, list[str], list[bool]]] = {}
        for entry in entries:
            family = protocol_family(entry.server.protocol)
            index = indexes[family]
            winner = index.oldest_overlap(entry)
            if plain is not None and plain.gateway is not entry.gateway and _cannot_merge(plain, entry):
                winner = plain  # skipped whatever its hosts ("conflict with existing server")
            if plain is None and family != "tls":
                plain = entry
            if winner is not None:
                key = (winner.gateway.meta.key, entry.gateway.meta.key)
                _, _, hosts, identical = pairs.setdefault(key, (winner, entry, [], [False]))
                identical[0] = identical[0] or winner.host == entry.host
                for h in (winner.host, entry.host):
                    if h not in hosts:
                        hosts.append(h)
            index.add(entry)
        proxy_ns = workload.split("/", 1)[0]
        for winner, loser, hosts, identical in pairs.values():
            severity, text = effect(state, winner, loser, identical[0], proxy_ns)
            yield finding(
                "GW-CONFLICT", [loser.gateway.meta.ref, winner.gateway.meta.ref, refs[workload]],
                origin=loser.gateway.meta.origin, severity=severity, winner=winner.gateway.meta.key,
                loser=loser.gateway.meta.key, workload=workload, listener=listener,
                winner_port=winner.server.port, loser_port=loser.server.port, hosts=", ".join(hosts),
                overlap=(f"overlapping hosts {', '.join(hosts)}" if identical[0] or _mergeable(winner, loser)
                         else f"hosts {', '.join(hosts)}"),
                bind=f" (bind {bind})" if bind else "", effect=text + _why_older(winner.gateway, loser.gateway))


def _mergeable(a: Entry, b: Entry) -> bool:
    """Can istiod put both servers on one listener (HTTP with HTTP, TLS with TLS by SNI)?"""
    fa, fb = protocol_family(a.server.protocol), protocol_family(b.server.protocol)
    return fa == fb and fa in ("http", "tls")


def _cannot_merge(first: Entry, entry: Entry) -> bool:
    """Does the port's plain-text server make istiod skip ``entry`` whatever the hosts? Unless both are
    HTTP-family (canMergeProtocols, gateway.go:513; see mesh.merge_port)."""
    return not can_merge(first.server.protocol, entry.server.protocol)


def _why_older(winner: Gateway, loser: Gateway) -> str:
    w, lo = winner.meta, loser.meta
    if w.synthetic_time or lo.synthetic_time:
        return " (Simulated cluster: objects count as created in the order they were loaded.)"
    if int(w.created.timestamp()) != int(lo.created.timestamp()):  # type: ignore[union-attr]
        return f" ({w.key} was created first, at {w.created:%Y-%m-%d %H:%M:%S}.)"
    return " (Both were created in the same second, so the name, then the namespace, decides.)"


ANALYZER = Analyzer("gateway-conflicts", ("Gateway", "Pod", "Deployment", "Service"), ("GW-CONFLICT",), run)
