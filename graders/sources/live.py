"""Reading a live cluster: the only place the graders talk to a Kubernetes API server (apart from
the port-forwards of graders.probes).

Read-only by construction: every request goes through ``Reader``, which only issues GET. One LIST
per kind, cluster-wide, so a 10k-object cluster costs a handful of requests and the RBAC needed is
exactly deploy/rbac/grader-readonly.yaml (get/list on the kinds below; pods/log in istio-system only
for lab 5's access-log check). Secrets and ConfigMaps are never requested. Responses are read as raw
JSON rather than through the client's typed models: it is faster, and the models' strict validation
would turn one odd object into a crash instead of a MANIFEST-INVALID finding.

Every failure becomes one ``ClusterError`` line saying what, where and how to fix it, within a few
seconds: requests carry a bounded timeout and urllib3 retries a refused connection only once.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graders import versions
from graders.errors import ClusterError

RBAC_FILE = "deploy/rbac/grader-readonly.yaml"
ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")  # preferred first
OPERATOR_GROUP = "install.istio.io"
KIND_CONTEXT = f"kind-{versions.CLUSTER_NAME}"


@dataclass(frozen=True)
class Kind:
    """One kind the graders read: where its cluster-wide LIST lives."""

    group: str
    plural: str
    kind: str
    namespaced: bool = True

    def path(self, version: str) -> str:
        base = f"/apis/{self.group}/{version}" if self.group else f"/api/{version}"
        return f"{base}/{self.plural}"

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


CORE_KINDS = (
    (Kind("", "namespaces", "Namespace", namespaced=False), "v1"),
    (Kind("", "pods", "Pod"), "v1"),
    (Kind("apps", "deployments", "Deployment"), "v1"),
    (Kind("", "services", "Service"), "v1"),
)
ISTIO_KINDS = (
    Kind(ISTIO_GROUP, "gateways", "Gateway"),
    Kind(ISTIO_GROUP, "virtualservices", "VirtualService"),
    Kind(ISTIO_GROUP, "destinationrules", "DestinationRule"),
    Kind(ISTIO_GROUP, "serviceentries", "ServiceEntry"),
)
OPERATOR_KIND = Kind(OPERATOR_GROUP, "istiooperators", "IstioOperator")
OPERATOR_VERSIONS = ("v1alpha1",)


@dataclass(frozen=True)
class ClusterRead:
    objects: list[dict]
    istio_installed: bool
    context: str
    server: str


class Missing(Exception):
    """404: the API group is not served (its CRDs are not installed), or the object does not exist."""


def kubeconfig_path(kubeconfig: str | None) -> str:
    """What kubectl would read: --kubeconfig, else $KUBECONFIG (read now, not at import), else ~/.kube/config."""
    if kubeconfig:
        return kubeconfig
    return os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


def resolve_context(context: str | None, kubeconfig: str | None) -> tuple[str, str]:
    """(kubeconfig path, context name), or a ClusterError listing what is available."""
    import yaml
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import list_kube_config_contexts

    path = kubeconfig_path(kubeconfig)
    files = [p for p in path.split(os.pathsep) if p]
    if not any(Path(p).is_file() for p in files):
        raise ClusterError(f"no kubeconfig at {path}; create the course cluster with `python -m graders cluster up` "
                           f"(kind writes context {KIND_CONTEXT}), or pass --kubeconfig FILE")
    try:
        contexts, active = list_kube_config_contexts(config_file=path)
    except (ConfigException, OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ClusterError(f"kubeconfig {path} cannot be read: {_one_line(err)}; "
                           "check it with `kubectl config view`") from None
    except yaml.YAMLError as err:  # a hand-edited file
        raise ClusterError(f"kubeconfig {path} is not valid YAML: {_one_line(err)}") from None
    names = [c.get("name") for c in contexts or [] if isinstance(c, dict)]
    hint = (f"available: {', '.join(names) if names else 'none'} (kind names a cluster's context kind-<name>; "
            f"the course cluster's is {KIND_CONTEXT})")
    if context is None:
        if not active or not isinstance(active, dict) or active.get("name") not in names:
            raise ClusterError(f"kubeconfig {path} has no current context; pass --context NAME ({hint})")
        return path, str(active["name"])
    if context not in names:
        raise ClusterError(f"context {context!r} is not in kubeconfig {path}; {hint}")
    return path, context


def _one_line(err: object) -> str:
    return " ".join(str(err).split())[:300]


def new_api_client(context: str | None, kubeconfig: str | None, *, timeout: float = 5.0) -> tuple[Any, str, str]:
    """A fresh ApiClient for the context (the global default configuration is left alone).

    Returns (api_client, context name, server URL). Retries are limited so an unreachable server
    fails in seconds instead of urllib3's default three slow attempts.
    """
    import urllib3
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path, name = resolve_context(context, kubeconfig)
    cfg = client.Configuration()
    try:
        # persist_config=False: a token refresh must never rewrite the learner's kubeconfig.
        config.load_kube_config(config_file=path, context=name, client_configuration=cfg, persist_config=False)
    except (ConfigException, OSError, ValueError, KeyError, TypeError) as err:
        raise ClusterError(f"context {name!r} in {path} is not usable: {_one_line(err)}; "
                           f"check it with `kubectl --context {name} cluster-info`") from None
    cfg.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0, backoff_factor=0)
    return client.ApiClient(cfg), name, cfg.host


class Reader:
    """GET-only JSON requests with a shared deadline and errors turned into ClusterError lines."""

    def __init__(self, api: Any, context: str, server: str, timeout: float, budget: float | None = None):
        self.api, self.context, self.server, self.timeout = api, context, server, timeout
        # Each request is bounded by ``timeout``; the budget bounds a server that is slow on every one.
        self.budget = budget if budget is not None else 6 * timeout
        self.deadline = time.monotonic() + self.budget

    def _too_slow(self) -> ClusterError:
        return ClusterError(f"the Kubernetes API server at {self.server} (context {self.context}) answers too "
                            f"slowly: reading the cluster took over {self.budget:g} s")

    def _request_timeout(self) -> tuple[float, float]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0.05:
            raise self._too_slow()
        read = min(self.timeout, remaining)
        return (min(read, max(1.0, self.timeout / 2)), read)

    def _get(self, path: str, what: str, kind: Kind | None, missing_ok: bool, accept: str,
             query: list[tuple[str, str]] | None = None) -> bytes:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        method, url, headers, _body, _post = self.api.param_serialize(
            "GET", path, query_params=query, header_params={"Accept": accept}, auth_settings=["BearerToken"])
        try:
            resp = self.api.call_api(method, url, headers, _request_timeout=self._request_timeout())
            data = resp.read()
        except ApiException as err:  # the client reports TLS failures this way (status 0)
            raise self._unreachable(err.reason or str(err)) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise self._unreachable(err) from None
        if resp.status == 404 and (missing_ok or (kind is not None and kind.group)):
            raise Missing(what)
        if not 200 <= resp.status < 300:
            raise self._http_error(resp.status, data, what, kind)
        return data

    def get_text(self, path: str, what: str, query: list[tuple[str, str]] | None = None) -> str:
        """GET ``path`` as text (a container log)."""
        return self._get(path, what, None, False, "text/plain, */*", query).decode("utf-8", "replace")

    def get_json(self, path: str, what: str, kind: Kind | None = None, *, missing_ok: bool = False,
                 query: list[tuple[str, str]] | None = None) -> dict:
        """GET ``path`` as JSON; 404 raises ``Missing`` for API groups (or when ``missing_ok``)."""
        data = self._get(path, what, kind, missing_ok, "application/json", query)
        try:
            doc = json.loads(data)
        except ValueError:
            raise ClusterError(f"{self.server} (context {self.context}) did not answer {path} with JSON; is this "
                               "a Kubernetes API server?") from None
        if not isinstance(doc, dict):
            raise ClusterError(f"{self.server} answered {path} with a {type(doc).__name__}, not a Kubernetes object")
        return doc

    def _unreachable(self, err: object) -> ClusterError:
        if time.monotonic() >= self.deadline - 0.05:  # the last request only had what was left of the budget
            return self._too_slow()
        reason = _transport_reason(err, self.timeout)
        return ClusterError(f"cannot reach the Kubernetes API server at {self.server} (context {self.context}): "
                            f"{reason}; is the cluster running? Check `kubectl --context {self.context} cluster-info`"
                            f" or create the course cluster with `python -m graders cluster up`")

    def _http_error(self, status: int, data: bytes, what: str, kind: Kind | None) -> ClusterError:
        try:
            message = str(json.loads(data).get("message", ""))
        except (ValueError, AttributeError):
            message = data[:200].decode("utf-8", "replace")
        where = f"(context {self.context}, {self.server})"
        if status == 403 and kind is not None:
            group = kind.group or '"" (core)'
            return ClusterError(f"permission denied {where}: the grader needs `list` on resource {kind.plural!r} in "
                                f"API group {group}, cluster-wide; the server said: {_one_line(message)}. "
                                f"Grant read-only access with `kubectl apply -f {RBAC_FILE}` (see the file for the "
                                "binding) or use a context that may read it")
        if status == 401:
            return ClusterError(f"the API server rejected the credentials of context {self.context} (401 Unauthorized)"
                                f"; refresh them, e.g. `kind export kubeconfig --name {versions.CLUSTER_NAME}`")
        return ClusterError(f"reading {what} failed {where}: HTTP {status}: {_one_line(message) or 'no message'}")

    def served_version(self, group: str, wanted: Iterable[str]) -> str | None:
        """The first of ``wanted`` the API group serves, or None when the group does not exist."""
        probe = Kind(group, "", "")
        try:
            doc = self.get_json(f"/apis/{group}", f"API group {group}", probe)
        except Missing:
            return None
        served = [v.get("version") for v in doc.get("versions", []) if isinstance(v, dict)]
        return next((v for v in wanted if v in served), None)

    def list_all(self, kind: Kind, version: str) -> list[dict]:
        doc = self.get_json(kind.path(version), f"{kind.plural} (cluster-wide list)", kind)
        items = doc.get("items")
        if not isinstance(items, list):
            raise ClusterError(f"{self.server} answered the list of {kind.plural} without items")
        api_version = kind.api_version(version)
        out = []
        for item in items:
            if not isinstance(item, dict):
                continue
            item["kind"], item["apiVersion"] = kind.kind, api_version  # LIST items of built-in kinds lack them
            md = item.get("metadata")
            if isinstance(md, dict):
                md.pop("managedFields", None)  # bookkeeping noise, often half the bytes
            out.append(item)
        return out


def _transport_reason(err: object, timeout: float) -> str:
    """A short human reason from urllib3's nested exceptions."""
    import urllib3

    reason = getattr(err, "reason", None) if isinstance(err, urllib3.exceptions.MaxRetryError) else err
    text = _one_line(reason)
    low = text.lower()
    if isinstance(reason, urllib3.exceptions.SSLError) or "ssl" in low or "certificate" in low:
        return f"TLS handshake failed ({text[:160]}); check the server URL and certificate data in the kubeconfig"
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, so look at "refused" first.
    if "refused" in low:
        return "connection refused"
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError) or "read timed out" in low:
        return f"no answer within {timeout:g} s"
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError) or "timed out" in low:
        return "the connection timed out"
    if "name or service not known" in low or "nodename nor servname" in low or "name resolution" in low:
        return "the server's host name does not resolve"
    return text[:200] or type(reason).__name__


def read_cluster(context: str | None, kubeconfig: str | None, timeout: float = 5.0, *,
                 budget: float | None = None) -> ClusterRead:
    """Everything the graders reason about, read with one cluster-wide LIST per kind.

    ``timeout`` bounds each request; ``budget`` (default 6 x timeout) bounds the whole read.
    """
    api, name, server = new_api_client(context, kubeconfig, timeout=timeout)
    try:
        reader = Reader(api, name, server, timeout, budget)
        objects: list[dict] = []
        for kind, version in CORE_KINDS:
            objects += reader.list_all(kind, version)
        istio_version = reader.served_version(ISTIO_GROUP, ISTIO_VERSIONS)
        istio_installed = istio_version is not None
        if istio_version is not None:
            for kind in ISTIO_KINDS:
                try:
                    objects += reader.list_all(kind, istio_version)
                except Missing:
                    if kind.plural in ("gateways", "virtualservices"):
                        istio_installed = False  # a partial install: the CRDs that matter are missing
        operator_version = reader.served_version(OPERATOR_GROUP, OPERATOR_VERSIONS)
        if operator_version is not None:
            with contextlib.suppress(Missing):  # CRD deleted between the two requests
                objects += reader.list_all(OPERATOR_KIND, operator_version)
        return ClusterRead(objects, istio_installed, name, server)
    finally:
        api.close()


def read_pod_logs(context: str | None, kubeconfig: str | None, namespace: str, selector: str, container: str,
                  tail: int, timeout: float = 5.0) -> list[tuple[str, str]]:
    """(``ns/pod``, the last ``tail`` lines of ``container``) for every pod of ``namespace`` whose labels
    match ``selector``: one LIST and one GET of pods/log per pod, never exec. pods/log needs its own
    grant (the optional Role in deploy/rbac/grader-readonly.yaml)."""
    api, name, server = new_api_client(context, kubeconfig, timeout=timeout)
    try:
        reader = Reader(api, name, server, timeout)
        pods = reader.get_json(f"/api/v1/namespaces/{namespace}/pods", f"pods in {namespace}", CORE_KINDS[1][0],
                               query=[("labelSelector", selector)])
        out = []
        for item in pods.get("items") or []:
            pod = (item.get("metadata") or {}).get("name") if isinstance(item, dict) else None
            if isinstance(pod, str):
                text = reader.get_text(f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                                       f"the {container} log of pod {namespace}/{pod}",
                                       [("container", container), ("tailLines", str(tail))])
                out.append((f"{namespace}/{pod}", text))
        return out
    finally:
        api.close()
