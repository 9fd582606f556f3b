"""What ``kubectl apply`` refuses for the kinds the engine reads, so the simulated grader never
accepts an object a real cluster would not store.

Three gatekeepers, each cited where it enforces the rule (Istio 1.30.3):

- the CRD schema (``manifests/charts/base/files/crd-all.gen.yaml``): a Gateway server requires
  ``port`` and ``hosts``, a server port requires ``number``, ``protocol`` and ``name`` (v1 at
  :7229, the port's ``required`` list at :7281-7284); a
  DestinationRule requires ``host`` and each subset a ``name``; a ServiceEntry requires ``hosts``
  (never ``*``) and each port ``number`` and ``name``;
- istiod's validating webhook (``pkg/config/validation/validation.go``, ``ValidateGateway`` at :408,
  ``validateServer`` :457, ``validateServerPort`` :494, ``ValidateVirtualService`` at :1743 (a
  delegate, without hosts, has no gateways :1750-1754; hosts :1794-1810; "http, tcp or tls must be
  provided" :1828), ``validateGatewayNames`` :2377, also for match gateways
  (``pkg/config/validation/virtualservice.go``:177); host syntax in
  ``pkg/config/validation/agent/validation.go``: ``ValidateWildcardDomain`` :682,
  ``ValidatePartialWildCard`` :848, ``validateSidecarOrGatewayHostnamePart`` :857,
  ``ValidateNamespaceSlashWildcardHostname`` :881; labels in ``pkg/config/labels/instance.go``:30-48);
- the Kubernetes API server: ``metadata.name`` must be a lowercase RFC 1123 subdomain (a Service
  name an RFC 1035 label), ``metadata.namespace`` an RFC 1123 label (apimachinery's
  ``ValidateObjectMeta``).

Each check returns the first problem as ``(field, problem, fix)`` or None; ``objects.py`` turns it
into MANIFEST-INVALID with the file and line."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

Problem = tuple[str, str, str]

CRD = "the {kind} CRD's schema requires it"
WEBHOOK = "istiod's validating webhook rejects it"
API_SERVER = "the Kubernetes API server rejects it"

# pkg/config/labels/instance.go:30,32 (Istio's labels accept upper case; Kubernetes names do not).
_LABEL = r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
_DNS1123_LABEL = re.compile(f"^{_LABEL}$")
_WILDCARD_LABEL = re.compile(rf"^(\*|(\*|\*-)?{_LABEL})$")
_K8S_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_K8S_SUBDOMAIN = re.compile(rf"^{_K8S_LABEL}(\.{_K8S_LABEL})*$")
_K8S_LABEL_RE = re.compile(f"^{_K8S_LABEL}$")
_DNS1035 = re.compile(r"^[a-z](?:[-a-z0-9]*[a-z0-9])?$")
# pkg/config/protocol/instance.go Parse (case-insensitive); anything else is UnsupportedProtocol.
PROTOCOLS = ("HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY", "TCP", "TLS", "UDP", "MONGO", "REDIS",
             "MYSQL")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def wildcard_domain_problem(domain: str) -> str | None:
    """agent.ValidateWildcardDomain: the first label may be ``*``, ``*name`` or a DNS label, the
    rest DNS labels, and the last label not all digits."""
    if not domain or len(domain) > 255:
        return "must be 1 to 255 characters"
    first, _, rest = domain.partition(".")
    if len(first) > 63 or not _WILDCARD_LABEL.match(first):
        return f"label '{first}' is not a DNS label (letters, digits and '-'; only a leading '*' may be a wildcard)"
    if rest:
        labels = rest.split(".")
        if labels[-1].isdigit():
            return f"the top-level label '{labels[-1]}' cannot be all digits"
        for i, label in enumerate(labels):
            if i == len(labels) - 1 and label == "":
                break
            if len(label) > 63 or not _DNS1123_LABEL.match(label):
                return f"label '{label}' is not a DNS label"
    return None


def gateway_host_problem(host: str) -> str | None:
    """ValidateNamespaceSlashWildcardHostname(host, isGateway=true): ``[ns/]dnsName`` where ns is
    ``*``, ``.`` or a DNS label, and dnsName is ``*``, an IP, or a dotted name whose only wildcard is
    a whole leading ``*.`` label."""
    ns, slash, name = host.partition("/")
    if not slash:
        ns, name = "", host
    elif not ns or not name:
        return "namespace and host name around '/' cannot be empty"
    elif ns not in ("*", ".") and not _DNS1123_LABEL.match(ns):
        return f"'{ns}' is not a namespace (write */, ./ or a namespace name before the '/')"
    if name != "*" and "." not in name:
        return "short names are not allowed in a Gateway: write the full host name (with a dot), or *"
    if "*" in name and name != "*" and not name.startswith("*."):
        return "a partial wildcard is not allowed: only a whole first label may be *, as in *.example.com"
    problem = wildcard_domain_problem(name)
    return None if problem is None or _is_ip(name) else problem


def _name_problem(kind: str, md: Mapping[str, Any]) -> Problem | None:
    name, ns = md.get("name"), md.get("namespace")
    if kind == "Service":
        if not (isinstance(name, str) and len(name) <= 63 and _DNS1035.match(name)):
            return ("metadata.name", f"'{name}' is not a valid Service name ({API_SERVER}: an RFC 1035 label, "
                    "lowercase letters, digits and '-', starting with a letter, at most 63 characters)",
                    "rename it, for example my-service")
    elif kind == "Namespace":
        if not (isinstance(name, str) and len(name) <= 63 and _K8S_LABEL_RE.match(name)):
            return ("metadata.name", f"'{name}' is not a valid namespace name ({API_SERVER}: a lowercase RFC 1123 "
                    "label, without dots)", "rename it, for example team-a")
    elif not (isinstance(name, str) and len(name) <= 253 and _K8S_SUBDOMAIN.match(name)):
        return ("metadata.name", f"'{name}' is not a valid object name ({API_SERVER}: a lowercase RFC 1123 "
                "subdomain, lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)",
                "rename it, for example my-gateway")
    if kind == "Gateway" and "." in name:
        return ("metadata.name", f"'{name}' is not a valid Gateway name ({WEBHOOK}: a Gateway name is a DNS "
                "label, without dots)", "rename it without dots, for example my-gateway")
    if isinstance(ns, str) and not (len(ns) <= 63 and _K8S_LABEL_RE.match(ns)):
        return ("metadata.namespace", f"'{ns}' is not a valid namespace ({API_SERVER}: a lowercase RFC 1123 label)",
                "use the name of an existing namespace, such as default")
    return None


def _first(problems: Iterable[Problem | None]) -> Problem | None:
    return next((p for p in problems if p is not None), None)


def _server_problems(servers: list[Any]) -> Iterable[Problem | None]:
    names: dict[str, int] = {}
    for i, s in enumerate(servers):
        w = f"spec.servers[{i}]."
        if not isinstance(s, Mapping):
            continue  # the parser reports the wrong type
        port = s.get("port")
        if not isinstance(port, Mapping):
            yield (f"{w}port", f"is required ({CRD.format(kind='Gateway')})",
                   "add port: {number: 80, name: http, protocol: HTTP}")
            continue
        for key, example in (("number", "80"), ("protocol", "HTTP"), ("name", "http")):
            if port.get(key) in (None, ""):
                yield (f"{w}port.{key}", f"is required ({CRD.format(kind='Gateway')}; {WEBHOOK} too)",
                       f"add {key}: {example} to the server's port")
        protocol = port.get("protocol")
        if isinstance(protocol, str) and protocol and protocol.upper() not in PROTOCOLS:
            yield (f"{w}port.protocol", f"'{protocol}' is not a protocol Istio knows ({WEBHOOK})",
                   "use one of HTTP, HTTPS, HTTP2, GRPC, TCP, TLS")
        elif isinstance(protocol, str) and protocol:
            yield from _tls_problems(protocol.upper(), s.get("tls"), w)
        yield _bind_problem(s.get("bind"), port.get("number"), w)
        name = port.get("name")
        if isinstance(name, str) and name:
            if name in names:
                yield (f"{w}port.name", f"'{name}' is already the port name of spec.servers[{names[name]}]; "
                       f"port names must be unique across a Gateway's servers ({WEBHOOK})",
                       "give each server's port its own name, such as http-2")
            names.setdefault(name, i)
        for j, host in enumerate(s.get("hosts") or ()):
            problem = gateway_host_problem(host) if isinstance(host, str) else None
            if problem:
                yield (f"{w}hosts[{j}]", f"'{host}' is not a valid Gateway host ({WEBHOOK}): {problem}",
                       "write hosts like bookinfo.example.com, *.example.com, * or ns/bookinfo.example.com")


HTTP_PROTOCOLS = ("HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB")  # protocol.Instance.IsHTTP
TERMINATING = ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")


def _tls_problems(protocol: str, tls: Any, w: str) -> Iterable[Problem | None]:
    """validateServer's TLS/protocol pairing (validation.go:475-490) and validateTLSOptions'
    certificate rules (:527-657), for the fields a learner writes."""
    if protocol in ("HTTPS", "TLS") and tls is None:
        yield (f"{w}tls", f"is required for an {protocol} server ({WEBHOOK})",
               "add tls: {mode: SIMPLE, credentialName: <secret>} (or mode: PASSTHROUGH)")
        return
    if not isinstance(tls, Mapping):
        return
    mode = tls.get("mode") or "PASSTHROUGH"  # the enum's zero value
    certs = bool(tls.get("serverCertificate")) or bool(tls.get("privateKey")) or bool(tls.get("caCertificates"))
    if protocol in HTTP_PROTOCOLS and (mode not in ("PASSTHROUGH", "AUTO_PASSTHROUGH") or certs):
        yield (f"{w}tls", f"a plain-text {protocol} server cannot have TLS settings other than httpsRedirect "
               f"({WEBHOOK})", "use protocol HTTPS for a TLS server, or keep only tls: {httpsRedirect: true}")
    elif protocol not in HTTP_PROTOCOLS and protocol not in ("HTTPS", "TLS"):
        yield (f"{w}tls", f"a {protocol} server cannot have TLS settings ({WEBHOOK})",
               "remove tls, or use protocol TLS or HTTPS")
    credential = bool(tls.get("credentialName")) or bool(tls.get("credentialNames"))
    if mode == "ISTIO_MUTUAL" and (credential or certs):
        yield (f"{w}tls", f"ISTIO_MUTUAL takes no certificates or credentialName ({WEBHOOK})",
               "remove the certificate fields, or use mode MUTUAL with a credentialName")
    elif mode in TERMINATING and not credential and not tls.get("tlsCertificates"):
        if not (tls.get("serverCertificate") and tls.get("privateKey")):
            yield (f"{w}tls.credentialName", f"is required for mode {mode}: with neither it nor serverCertificate "
                   f"and privateKey the gateway has no certificate ({WEBHOOK})",
                   "set credentialName to the name of a TLS Secret in the gateway's namespace")
        elif mode != "SIMPLE" and not tls.get("caCertificates"):
            yield (f"{w}tls.caCertificates", f"is required for mode {mode} without a credentialName ({WEBHOOK})",
                   "add caCertificates, or use a credentialName whose Secret holds ca.crt")


def _bind_problem(bind: Any, number: Any, w: str) -> Problem | None:
    """validateServerBind (validation.go:515-525): an IP address, or unix:// with port 0."""
    if not isinstance(bind, str) or not bind:
        return None
    if bind.startswith("unix://"):
        if number:
            return (f"{w}port.number", f"must be 0 for a unix domain socket bind ({WEBHOOK})",
                    "remove bind, or use an IP address")
        return None
    if not _is_ip(bind):
        return (f"{w}bind", f"'{bind}' is not a valid IP address ({WEBHOOK})",
                "bind to an IP address of the gateway pod, such as 0.0.0.0, or remove bind")
    return None


def gateway_problem(obj: Mapping[str, Any]) -> Problem | None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    servers = spec.get("servers")
    if servers is None or (isinstance(servers, list) and not servers):
        return ("spec.servers", f"must list at least one server ({WEBHOOK})",
                "add a server: port {number, name, protocol} and hosts")
    return _first(_server_problems(servers)) if isinstance(servers, list) else None


def _mesh_bound(gateways: Any) -> bool:
    return not gateways or (isinstance(gateways, list) and "mesh" in gateways)


def names_match(a: str, b: str) -> bool:
    """host.Name.Matches (pkg/config/host/name.go:37-60), used for duplicate VirtualService hosts
    (validation.go:1813-1825): exact, case-sensitive, a leading ``*`` matching any suffix."""
    if a.startswith("*") and b.startswith("*"):
        return b[1:].endswith(a[1:]) if len(a) < len(b) else a[1:].endswith(b[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def fqdn_problem(name: str) -> str | None:
    """agent.ValidateFQDN: 1 to 255 characters of DNS labels, the last not all digits."""
    if not name or len(name) > 255:
        return "must be 1 to 255 characters"
    labels = name.split(".")
    if labels[-1].isdigit():
        return f"the top-level label '{labels[-1]}' cannot be all digits"
    bad = next((lb for i, lb in enumerate(labels) if not (i == len(labels) - 1 and lb == "")
                and (len(lb) > 63 or not _DNS1123_LABEL.match(lb))), None)
    return None if bad is None else f"label '{bad}' is not a DNS label"


def gateway_names_problem(names: Any, field: str) -> Problem | None:
    """validateGatewayNames (validation.go:2377-2406), for spec.gateways and match[].gateways:
    ``namespace/name`` with both DNS labels (so ``./name`` is refused, although istiod's
    resolveGatewayName would read it), or a name without '/' that is a valid DNS name."""
    for i, ref in enumerate(names if isinstance(names, list) else ()):
        if not isinstance(ref, str):
            continue
        ns, slash, name = ref.partition("/")
        if not slash:
            problem = fqdn_problem(ref)
        elif not ns or not name:
            problem = "the namespace and the Gateway name around '/' cannot be empty"
        elif not _DNS1123_LABEL.match(ns):
            problem = (f"'{ns}' is not a namespace" + (" ('./' is not accepted here)" if ns == "." else ""))
        elif not _DNS1123_LABEL.match(name):
            problem = f"'{name}' is not a Gateway name (a DNS label)"
        else:
            problem = None
        if problem:
            return (f"{field}[{i}]", f"'{ref}' is not a valid gateway reference ({WEBHOOK}): {problem}",
                    "write <namespace>/<gateway name>, such as default/bookinfo-gateway, or the name alone for a "
                    "Gateway in the VirtualService's namespace")
    return None


def virtual_service_problem(obj: Mapping[str, Any]) -> Problem | None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    if not spec.get("hosts") and spec.get("gateways"):
        return ("spec.hosts", f"is required when spec.gateways is set ({WEBHOOK}: a VirtualService without hosts is "
                "a delegate, and a delegate must have no gateways)", "list the host names this VirtualService serves")
    problem = gateway_names_problem(spec.get("gateways"), "spec.gateways")
    for i, rule in enumerate(spec.get("http") or ()):
        for j, m in enumerate((rule.get("match") or ()) if isinstance(rule, Mapping) else ()):
            if problem is None and isinstance(m, Mapping):
                problem = gateway_names_problem(m.get("gateways"), f"spec.http[{i}].match[{j}].gateways")
    if problem:
        return problem
    for i, host in enumerate(spec.get("hosts") or ()):
        if not isinstance(host, str):
            continue
        problem = None if _is_ip(host) else wildcard_domain_problem(host)
        if problem:
            return (f"spec.hosts[{i}]", f"'{host}' is not a valid host ({WEBHOOK}): {problem}",
                    "write hosts like reviews, bookinfo.example.com or *.example.com")
        if host == "*" and _mesh_bound(spec.get("gateways")):
            return (f"spec.hosts[{i}]", f"'*' is not allowed for a VirtualService bound to the mesh ({WEBHOOK}); "
                    "no spec.gateways means the mesh", "list the Gateway in spec.gateways, or name the hosts")
    hosts = [h for h in spec.get("hosts") or () if isinstance(h, str)]
    for i, a in enumerate(hosts):
        for b in hosts[i + 1:]:
            if names_match(a, b):
                return ("spec.hosts", f"'{a}' and '{b}' overlap ({WEBHOOK}: duplicate hosts in one VirtualService, "
                        "a wildcard counting as a duplicate of the names it covers)",
                        "keep only the broader host, or split the routes into two VirtualServices")
    if not any(spec.get(k) for k in ("http", "tcp", "tls")):
        return ("spec.http", f"a VirtualService needs http, tcp or tls routes ({WEBHOOK})",
                "add spec.http with at least one route")
    return None


def destination_rule_problem(obj: Mapping[str, Any]) -> Problem | None:
    """ValidateDestinationRule (validation.go:659-686): the host is a (wildcard) domain, subset
    names are present, DNS labels (validateSubsetName :2623) and unique."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    host = spec.get("host")
    problem = wildcard_domain_problem(host) if isinstance(host, str) else None
    if problem:
        return ("spec.host", f"'{host}' is not a valid host ({WEBHOOK}): {problem}",
                "write the Service name (reviews) or its full name (reviews.default.svc.cluster.local)")
    seen: set[str] = set()
    for i, s in enumerate(spec.get("subsets") or ()):
        if not isinstance(s, Mapping):
            continue
        name = s.get("name")
        if not name:
            return (f"spec.subsets[{i}].name", f"is required ({CRD.format(kind='DestinationRule')})",
                    "name the subset, for example name: v1")
        if not isinstance(name, str) or len(name) > 63 or not _DNS1123_LABEL.match(name):
            return (f"spec.subsets[{i}].name", f"'{name}' is not a valid subset name ({WEBHOOK}: a DNS label)",
                    "use letters, digits and '-', for example v1")
        if name in seen:
            return (f"spec.subsets[{i}].name", f"'{name}' names two subsets ({WEBHOOK}: duplicate subset names)",
                    "give each subset its own name")
        seen.add(name)
    return None


def service_entry_problem(obj: Mapping[str, Any]) -> Problem | None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    if not spec.get("hosts"):
        return ("spec.hosts", f"is required ({CRD.format(kind='ServiceEntry')})", "list the external host names")
    if "*" in spec["hosts"]:
        return ("spec.hosts", f"cannot be the wildcard * ({CRD.format(kind='ServiceEntry')})",
                "name the external hosts, for example httpbin.org or *.example.com")
    for i, p in enumerate(spec.get("ports") or ()):
        if isinstance(p, Mapping) and not p.get("name"):
            return (f"spec.ports[{i}].name", f"is required ({CRD.format(kind='ServiceEntry')})",
                    "name the port, for example name: https")
    return None


_SPEC_CHECKS = {"Gateway": gateway_problem, "VirtualService": virtual_service_problem,
                "DestinationRule": destination_rule_problem, "ServiceEntry": service_entry_problem}


def rejected(kind: str, obj: Mapping[str, Any]) -> Problem | None:
    """The first reason a cluster would refuse this object (None if it would store it)."""
    md = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    problem = _name_problem(kind, md)
    if problem is None and kind in _SPEC_CHECKS:
        problem = _SPEC_CHECKS[kind](obj)
    return problem
