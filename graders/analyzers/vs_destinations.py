"""Route destinations: the host exists, the port is a Service port, and pods are ready.

istiod never drops a route to a missing host or port; it points it at a cluster that does not
exist, which Envoy answers with 503 NC. Short names resolve in the VirtualService's namespace and
only dotless names are expanded, so ``reviews.default`` is taken literally (and is not found).

A named subset must be defined by a DestinationRule for the host: istiod builds one cluster per
defined subset (outbound|port|subset|host), so a route to an undefined one is 503 NC too. istioctl
reports it as IST0101 "host+subset in destinationrule"
(pkg/config/analysis/analyzers/virtualservice/destinationrules.go:63-75, checkDestinationSubset :99)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from graders.analyzers import Analyzer
from graders.catalogue import Finding, finding
from graders.mesh import bound_server_ports, host_subset_of, resolve_host, target_port_number
from graders.state import CLUSTER_DOMAIN, Destination, Service, State, VirtualService


def known_external(state: State, host: str) -> bool:
    """Does a ServiceEntry declare ``host`` (a route destination as written)? As istioctl's
    GetDestinationHost looks it up (pkg/config/analysis/analyzers/util/service_lookup.go:109-162): the
    exact host, else a wildcard ServiceEntry host whose suffix it ends with. Case-sensitive, as istiod
    is: the route's cluster is named after the destination as written (GetDestinationCluster,
    pilot/pkg/networking/core/route/route.go:356) and a ServiceEntry's clusters after its hosts, so
    ``httpbin.org`` never reaches a ServiceEntry for ``HTTPBin.org`` (503 NC)."""
    if host in state.service_entry_hosts:
        return True
    return any(host_subset_of(host, h) for h in state.service_entry_hosts if h.startswith("*"))


def _not_found_hint(state: State, vs: VirtualService, dest: Destination) -> str:
    host = dest.host
    parts = host.split(".")
    if len(parts) == 2 and state.service(parts[1], parts[0]):
        return (f"Only names without a dot are expanded: write '{parts[0]}' (if the VirtualService is in "
                f"{parts[1]}) or the full name {parts[0]}.{parts[1]}.{CLUSTER_DOMAIN}.")
    if "." not in host:
        elsewhere = [s.meta.namespace for s in state.services if s.meta.name == host]
        if elsewhere:
            return (f"A short name means a Service in the VirtualService's namespace ({vs.meta.namespace}); Service "
                    f"{host} exists in {', '.join(sorted(elsewhere))}: use {host}.{elsewhere[0]}.{CLUSTER_DOMAIN}.")
    names = [s.meta.name for s in state.services_by_ns.get(vs.meta.namespace, ())][:8]
    return (f"Point route.destination.host at an existing Service (in {vs.meta.namespace}: "
            f"{', '.join(names) or 'none'}), or declare the external host with a ServiceEntry.")


def _port_problem(svc: Service, dest: Destination, server_ports: Iterable[int] = ()) -> str | None:
    """What is wrong with the destination port, or None. Without a port, istiod's GetDestinationCluster
    (pilot/pkg/networking/core/route/route.go:362-368) takes the Service's only port, else the declared
    port of the Gateway server the route is built for (``server_ports``: those the VirtualService binds
    to); only a server port the Service lacks gives a cluster that does not exist. istioctl's IST0112
    warns on every omitted port of a multi-port Service; this follows istiod, as the trace does."""
    if dest.port is not None:
        if svc.port(dest.port):
            return None
        if any(target_port_number(sp, None) == dest.port for sp in svc.ports):
            return f"on port {dest.port}, which is a targetPort (a container port), not a port of the Service"
        return f"on port {dest.port}, which the Service does not have"
    missing = sorted({p for p in server_ports if svc.port(p) is None}) if len(svc.ports) > 1 else []
    if missing:
        return (f"without a port; the Service has several ports, so istiod uses the port of the Gateway server the "
                f"route is built for, {', '.join(map(str, missing))}, which the Service does not have")
    return None


def _ready_problem(state: State, svc: Service, subset_labels: dict[str, str]) -> str | None:
    selector = dict(svc.selector or {})
    if not selector:
        return " (the Service has no selector)"
    pods = state.pods_matching({**selector, **subset_labels}, svc.meta.namespace)
    if any(p.ready for p in pods):
        return None
    if not pods:
        return f" (no pod in {svc.meta.namespace} has the labels " + ", ".join(
            f"{k}={v}" for k, v in {**selector, **subset_labels}.items()) + ")"
    return f" ({len(pods)} pod(s) match but none is Ready)"


def subset_labels(state: State, fqdn: str, subset: str | None) -> dict[str, str] | None:
    """The labels a named subset adds (None if the subset is not defined in any DestinationRule)."""
    if subset is None:
        return {}
    for dr in state.destination_rules_by_host.get(fqdn, ()):
        for s in dr.subsets:
            if s.name == subset:
                return dict(s.labels)
    return None


def _subset_not_found(state: State, vs: VirtualService, dest: Destination, host: str, port: int | None) -> Finding:
    defined = sorted({s.name for dr in state.destination_rules_by_host.get(host, ()) for s in dr.subsets})
    rules = state.destination_rules_by_host.get(host, ())
    fix = (f"add a subset named '{dest.subset}' (with the pod labels it stands for, e.g. version: v1) to "
           f"DestinationRule {rules[0].meta.key}, or route to a defined subset: {', '.join(defined) or 'none'}."
           if rules else
           f"create a DestinationRule with spec.host {host} whose subsets include name: {dest.subset}, or drop "
           "destination.subset to send requests to every pod of the host.")
    return finding("VS-SUBSET-NOT-FOUND", [vs.meta.ref, *(dr.meta.ref for dr in rules)], origin=vs.meta.origin,
                   vs=vs.meta.key, host=host, subset=dest.subset, cluster=f"outbound|{port or ''}|{dest.subset}|{host}",
                   fix=fix)


def run(state: State) -> Iterator[Finding]:
    seen: set[tuple] = set()
    for vs in state.virtual_services:
        for route in vs.http:
            for dest in route.destinations:
                key = (vs.meta.key, dest.host, dest.port, dest.subset)
                if key in seen:
                    continue
                seen.add(key)
                fqdn = resolve_host(dest.host, vs.meta.namespace)
                svc = state.service_by_fqdn.get(fqdn)
                if svc is None:
                    if not known_external(state, dest.host):
                        yield finding("VS-DESTINATION-NOT-FOUND", [vs.meta.ref], origin=vs.meta.origin,
                                      vs=vs.meta.key, host=dest.host, resolved=fqdn,
                                      suggestion=_not_found_hint(state, vs, dest))
                    elif subset_labels(state, dest.host, dest.subset) is None:
                        yield _subset_not_found(state, vs, dest, dest.host, dest.port)
                    continue
                problem = _port_problem(svc, dest, bound_server_ports(state, vs))
                if problem:
                    # istioctl: IST0112 when the port is omitted on a multi-port Service, IST0101
                    # ("Referenced host:port not found") when the port is not the Service's.
                    yield finding("VS-DESTINATION-PORT-MISMATCH", [vs.meta.ref, svc.meta.ref], origin=vs.meta.origin,
                                  istio_code="IST0112" if dest.port is None else "IST0101",
                                  vs=vs.meta.key, service=svc.meta.key, problem=problem,
                                  ports=", ".join(str(p.port) for p in svc.ports))
                    continue
                labels = subset_labels(state, fqdn, dest.subset)
                if labels is None:
                    only = svc.ports[0].port if len(svc.ports) == 1 else None
                    yield _subset_not_found(state, vs, dest, fqdn, dest.port or only)
                    continue
                why = _ready_problem(state, svc, labels or {}) if labels is not None else None
                if why:
                    yield finding("SVC-NO-READY-ENDPOINTS", [vs.meta.ref, svc.meta.ref], origin=vs.meta.origin,
                                  vs=vs.meta.key, service=svc.meta.key, namespace=svc.meta.namespace,
                                  subset=f" (subset {dest.subset})" if dest.subset else "", why=why,
                                  selector=",".join(f"{k}={v}" for k, v in {**(svc.selector or {}),
                                                                            **(labels or {})}.items()))


ANALYZER = Analyzer("virtualservice-destinations",
                    ("VirtualService", "Service", "ServiceEntry", "DestinationRule", "Pod"),
                    ("VS-DESTINATION-NOT-FOUND", "VS-DESTINATION-PORT-MISMATCH", "VS-SUBSET-NOT-FOUND",
                     "SVC-NO-READY-ENDPOINTS"), run)
