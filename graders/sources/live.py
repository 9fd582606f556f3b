"""Reading a live cluster: the only place the graders talk to a Kubernetes API server (apart from
the port-forwards of graders.probes).

Read-only by construction: every request goes through ``Reader``, which only issues GET. One LIST
per kind, cluster-wide, so a 10k-object cluster costs a handful of requests and the RBAC needed is
exactly deploy/rbac/grader-readonly.yaml (get/list on the kinds below; pods/log in istio-system only
for lab 5's access-log check). Secrets and ConfigMaps are never requested. Responses are read as raw
JSON rather than through the client's typed models: it is faster, and the models' strict validation
would turn one odd object into a crash instead of a MANIFEST-INVALID finding.

Every failure becomes one ``ClusterError`` line saying what, where and how to fix it, within the
command's deadline (graders.deadline): a refused connection is retried once, a 429/503 only after its
Retry-After and only while the deadline allows, and a server that trickles or goes silent is cut off
by the deadline's watchdog with a line naming the step. Lists are paged (``limit``/``continue``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

from graders import versions
from graders.errors import ClusterError, PermissionDenied

RBAC_FILE = "deploy/rbac/grader-readonly.yaml"
LOG_ROLE = "istio-gateway-course-grader-egress-log"  # the optional Role in RBAC_FILE granting get pods/log
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
# h10-gwapi (issue #15): the Kubernetes Gateway API kinds, with their status (istiod writes it there).
GWAPI_GROUP = "gateway.networking.k8s.io"
GWAPI_KINDS = (
    (Kind(GWAPI_GROUP, "gatewayclasses", "GatewayClass", namespaced=False), ("v1", "v1beta1")),
    (Kind(GWAPI_GROUP, "gateways", "Gateway"), ("v1", "v1beta1")),
    (Kind(GWAPI_GROUP, "httproutes", "HTTPRoute"), ("v1", "v1beta1")),
    (Kind(GWAPI_GROUP, "referencegrants", "ReferenceGrant"), ("v1beta1", "v1")),  # istiod reads v1beta1
)
OPERATOR_KIND = Kind(OPERATOR_GROUP, "istiooperators", "IstioOperator")
OPERATOR_VERSIONS = ("v1alpha1",)


@dataclass(frozen=True)
class ClusterRead:
    objects: list[dict]
    istio_installed: bool
    context: str
    server: str
    gwapi_crds: bool | None = None  # h10-gwapi: does the server serve gateway.networking.k8s.io?


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
    fails in seconds; 429/503 answers are retried after their Retry-After only while the deadline
    allows; every connection can be interrupted by the deadline's watchdog (graders.deadline); a
    kubeconfig ``exec`` credential plugin runs under the deadline too, and its failure is one line.
    """
    import warnings

    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import _get_kube_config_loader

    from graders import deadline

    path, name = resolve_context(context, kubeconfig)
    cfg = client.Configuration()
    try:
        # persist_config=False: a token refresh must never rewrite the learner's kubeconfig.
        loader = _get_kube_config_loader(filename=path, active_context=name, persist_config=False)
        # The client's exec step, replaced by one bounded by the deadline and failing in one clear line.
        loader._load_from_exec_plugin = lambda: "exec" in loader._user and _exec_credentials(loader, name)
        _check_server(str(loader._cluster.safe_get("server") or ""), name, path)
        loader.load_and_set(cfg)
    except (ConfigException, OSError, ValueError, KeyError, TypeError) as err:
        raise ClusterError(f"context {name!r} in {path} is not usable: {_one_line(err)}; "
                           f"check it with `kubectl --context {name} cluster-info`") from None
    if not cfg.verify_ssl:  # insecure-skip-tls-verify: the user chose it; one warning per request is noise
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    cfg.retries = DeadlineRetry(total=3, connect=1, read=0, redirect=0, status=2, other=0, backoff_factor=0.2,
                                status_forcelist=(429, 503), respect_retry_after_header=True, raise_on_status=False)
    api = client.ApiClient(cfg)
    deadline.install(api)
    return api, name, cfg.host


def _check_server(server: str, context: str, path: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(server)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        ok = False
    if not ok:
        raise ClusterError(f"the cluster of context {context!r} in {path} has no usable server URL "
                           f"(server: {server!r}); it should look like https://127.0.0.1:6443. Recreate the entry "
                           f"with `kind export kubeconfig --name {versions.CLUSTER_NAME}`")


def _exec_credentials(loader: Any, context: str) -> bool:
    """The kubernetes client's exec-plugin step, bounded by the deadline and failing in one line.

    The client's own version waits for the plugin forever and, when it fails, logs to the root logger
    and carries on without credentials, so the user sees a 401 instead of the plugin's error.
    """
    import signal
    import subprocess

    from kubernetes.config.dateutil import parse_rfc3339
    from kubernetes.config.exec_provider import ExecProvider
    from kubernetes.config.kube_config import FileOrData

    from graders import deadline

    base = loader._get_base_path(loader._cluster.path)
    provider = ExecProvider(loader._user["exec"], base, loader._cluster)
    command = provider.args[0]
    what = f"the exec credential plugin `{command}` of context {context}"
    info: dict = {"apiVersion": provider.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    if provider.cluster is not None:
        info["spec"]["cluster"] = provider.cluster.value
    env = {**provider.env, "KUBERNETES_EXEC_INFO": json.dumps(info)}
    with deadline.within() as dl, dl.doing(what):
        try:
            proc = subprocess.Popen(provider.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, cwd=provider.cwd, env=env, text=True,
                                    start_new_session=True)
        except OSError as err:
            raise ClusterError(f"{what} could not be started: {err.strerror or err}; install it or fix "
                               "users[].user.exec.command in the kubeconfig") from None
        try:
            out, err_text = proc.communicate(timeout=max(0.05, dl.remaining()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise dl.error() from None
    if proc.returncode != 0:
        said = next((li.strip() for li in (err_text or "").splitlines() if li.strip()), "")
        raise ClusterError(f"{what} failed (exit code {proc.returncode})" + (f": {_one_line(said)}" if said else "")
                           + "; run it yourself to see why, or log in again with your cloud provider's tool")
    try:
        status = json.loads(out)["status"]
        if not isinstance(status, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ClusterError(f"{what} did not print an ExecCredential (JSON with a status); run it yourself to "
                           "see what it prints") from None
    if isinstance(status.get("token"), str) and status["token"]:
        loader.token = f"Bearer {status['token']}"
    elif status.get("clientCertificateData") and status.get("clientKeyData"):
        for attr, key in (("cert_file", "clientCertificateData"), ("key_file", "clientKeyData")):
            setattr(loader, attr, FileOrData(status, None, data_key_name=key, file_base_path=base,
                                             base64_file_content=False,
                                             temp_file_path=loader._temp_file_path).as_file())
    else:
        raise ClusterError(f"{what} gave neither a token nor a client certificate and key")
    if "expirationTimestamp" in status:
        loader.expiry = parse_rfc3339(status["expirationTimestamp"])
    return True


class DeadlineRetry(urllib3.Retry):
    """urllib3's Retry, but a Retry-After the deadline cannot wait for ends the command at once, in
    words (instead of sleeping past the deadline or failing as "is the cluster running?")."""

    def sleep_for_retry(self, response: Any) -> bool:
        from graders import deadline

        wait = self.get_retry_after(response)
        dl = deadline.current()
        if wait is not None and dl is not None and wait >= dl.remaining() - 0.1:
            raise ClusterError(f"the Kubernetes API server is busy (HTTP {response.status}) and asked to retry "
                               f"after {wait:g} s, past the deadline ({dl.remaining():.1f} s left while "
                               f"{dl.step}); try again later, or allow more time with {dl.flag} SECONDS")
        return bool(super().sleep_for_retry(response))


class Reader:
    """GET-only JSON requests under the deadline in force, errors turned into ClusterError lines."""

    PAGE = 500  # items per page: a 50k-pod cluster is 100 requests, none of them huge

    def __init__(self, api: Any, context: str, server: str, timeout: float):
        self.api, self.context, self.server, self.timeout = api, context, server, timeout

    def _get(self, path: str, what: str, kind: Kind | None, missing_ok: bool, accept: str,
             query: list[tuple[str, str]] | None = None) -> bytes:
        from kubernetes.client.exceptions import ApiException

        from graders import deadline

        method, url, headers, _body, _post = self.api.param_serialize(
            "GET", path, query_params=query, header_params={"Accept": accept}, auth_settings=["BearerToken"])
        with deadline.within() as dl, dl.doing(f"reading {what} from {self.server}"):
            try:
                resp = self.api.call_api(method, url, headers, _request_timeout=dl.timeouts(self.timeout))
                data = resp.read()
            except ApiException as err:  # the client reports TLS failures this way (status 0)
                raise self._unreachable(err.reason or str(err), dl) from None
            except (urllib3.exceptions.HTTPError, OSError) as err:
                raise self._unreachable(err, dl) from None
            dl.check()  # an answer cut short by the watchdog is no answer
        if resp.status == 404 and (missing_ok or (kind is not None and kind.group)):
            raise Missing(what)
        if not 200 <= resp.status < 300:
            raise self._http_error(resp.status, data, what, kind)
        return data

    def get_text(self, path: str, what: str, query: list[tuple[str, str]] | None = None) -> str:
        """GET ``path`` as text (a container log)."""
        return self._get(path, what, None, False, "text/plain, */*", query).decode("utf-8", "replace")

    def get_json(self, path: str, what: str, kind: Kind | None = None, *, missing_ok: bool = False,
                 query: list[tuple[str, str]] | None = None, accept: str = "application/json") -> dict:
        """GET ``path`` as JSON; 404 raises ``Missing`` for API groups (or when ``missing_ok``)."""
        data = self._get(path, what, kind, missing_ok, accept, query)
        try:
            doc = json.loads(data)
        except ValueError:
            raise ClusterError(f"{self.server} (context {self.context}) did not answer {path} with JSON; is this "
                               "a Kubernetes API server?") from None
        if not isinstance(doc, dict):
            raise ClusterError(f"{self.server} answered {path} with a {type(doc).__name__}, not a Kubernetes object")
        return doc

    def _unreachable(self, err: object, dl: Any) -> ClusterError:
        if dl.passed():  # the watchdog cut the request, or it only had what was left of the deadline
            return dl.error()
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
        if status == 403 and kind is not None and not kind.plural:  # API discovery, not a resource
            return ClusterError(f"permission denied {where}: the grader may not read API discovery for group "
                                f"{kind.group} (GET /apis/{kind.group}); the server said: {_one_line(message)}. "
                                f"Grant read-only access with `kubectl apply -f {RBAC_FILE}` or use a context that may "
                                "read it")
        if status == 403 and kind is not None:
            group = kind.group or '"" (core)'
            return ClusterError(f"permission denied {where}: the grader needs `list` on resource {kind.plural!r} in "
                                f"API group {group}, cluster-wide; the server said: {_one_line(message)}. "
                                f"Grant read-only access with `kubectl apply -f {RBAC_FILE}` (see the file for the "
                                "binding) or use a context that may read it")
        if status == 403:  # a subresource (pods/log): the caller knows which grant it needs
            return PermissionDenied(f"permission denied {where} while reading {what}: HTTP 403: "
                                    f"{_one_line(message) or 'no message'}")
        if status == 401:
            return ClusterError(f"the API server rejected the credentials of context {self.context} (401 Unauthorized)"
                                f"; refresh them, e.g. `kind export kubeconfig --name {versions.CLUSTER_NAME}`")
        if status in (429, 503):
            return ClusterError(f"the Kubernetes API server is overloaded or not ready {where}: it answered HTTP "
                                f"{status} to every try while reading {what}: {_one_line(message) or 'no message'}; "
                                "wait a moment and run the command again")
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

    def pages(self, path: str, what: str, kind: Kind | None = None, *, missing_ok: bool = False,
              accept: str = "application/json") -> Iterator[dict]:
        """One logical LIST, page by page (``limit`` = ``PAGE``, following ``metadata.continue``)."""
        token, seen = "", set()
        while True:
            query = [("limit", str(self.PAGE))] + ([("continue", token)] if token else [])
            doc = self.get_json(path, what, kind, missing_ok=missing_ok, query=query, accept=accept)
            yield doc
            meta = doc.get("metadata")
            token = str(meta.get("continue") or "") if isinstance(meta, dict) else ""
            if not token:
                return
            if token in seen:
                raise ClusterError(f"{self.server} (context {self.context}) answered the list of {what} with the "
                                   "same continue token twice; its paging is broken")
            seen.add(token)

    def list_all(self, kind: Kind, version: str) -> list[dict]:
        """One logical cluster-wide LIST of ``kind``, read in pages."""
        out: list[dict] = []
        for doc in self.pages(kind.path(version), f"{kind.plural} (cluster-wide list)", kind):
            out += self._items(doc, kind, version)
        return out

    def _items(self, doc: dict, kind: Kind, version: str) -> list[dict]:
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
    reason = getattr(err, "reason", None) if isinstance(err, urllib3.exceptions.MaxRetryError) else err
    text = _one_line(reason)
    low = text.lower()
    # NameResolutionError subclasses NewConnectionError, itself a ConnectTimeoutError in urllib3 2: look first.
    if isinstance(reason, urllib3.exceptions.NameResolutionError) or "name or service not known" in low \
            or "nodename nor servname" in low or "failed to resolve" in low or "name resolution" in low:
        return "the server's host name does not resolve (DNS); check the server URL in the kubeconfig"
    if isinstance(reason, urllib3.exceptions.ProtocolError) or "incompleteread" in low or "connection broken" in low:
        return f"the answer was cut off before its end ({text[:160]})"
    if isinstance(reason, urllib3.exceptions.SSLError) or "ssl" in low or "certificate" in low:
        return f"TLS handshake failed ({text[:160]}); check the server URL and certificate data in the kubeconfig"
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, so look at "refused" first.
    if "refused" in low:
        return "connection refused"
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError) or "read timed out" in low:
        return f"no answer within {timeout:g} s"
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError) or "timed out" in low:
        return "the connection timed out"
    return text[:200] or type(reason).__name__


def read_cluster(context: str | None, kubeconfig: str | None, timeout: float = 5.0, *,
                 budget: float | None = None) -> ClusterRead:
    """Everything the graders reason about, read with one cluster-wide LIST per kind.

    ``timeout`` caps each socket wait; the deadline in force (``--deadline``; else ``budget``, else
    graders.deadline.DEFAULT_READ_DEADLINE) bounds the whole read, credential plugin included.
    """
    from graders import deadline

    with deadline.within(budget):
        return _read_cluster(context, kubeconfig, timeout)


def _read_cluster(context: str | None, kubeconfig: str | None, timeout: float) -> ClusterRead:
    api, name, server = new_api_client(context, kubeconfig, timeout=timeout)
    try:
        reader = Reader(api, name, server, timeout)
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
        gwapi_served = reader.served_version(GWAPI_GROUP, ("v1", "v1beta1")) is not None
        if gwapi_served:  # h10-gwapi (issue #15)
            for kind, wanted in GWAPI_KINDS:
                version = reader.served_version(GWAPI_GROUP, wanted)
                with contextlib.suppress(Missing):  # this kind's CRD is not installed
                    objects += reader.list_all(kind, version or wanted[0])
        return ClusterRead(objects, istio_installed, name, server, gwapi_served)
    finally:
        api.close()


def read_pod_logs(context: str | None, kubeconfig: str | None, namespace: str, selector: str, container: str,
                  tail: int, timeout: float = 5.0) -> list[tuple[str, str]]:
    """(``ns/pod``, the last ``tail`` lines of ``container``) for every pod of ``namespace`` whose labels
    match ``selector``: one LIST and one GET of pods/log per pod, never exec. pods/log needs its own
    grant (the optional Role in deploy/rbac/grader-readonly.yaml)."""
    from graders import deadline

    with deadline.within():
        return _read_pod_logs(context, kubeconfig, namespace, selector, container, tail, timeout)


def _read_pod_logs(context: str | None, kubeconfig: str | None, namespace: str, selector: str, container: str,
                   tail: int, timeout: float) -> list[tuple[str, str]]:
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


# Accept headers that ask the API server for metadata only (PartialObjectMetadata[List]): how the course
# learns that Secrets and ConfigMaps exist, and their labels, without ever receiving what they hold.
METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
SECRET_METADATA_KEPT = ("name", "namespace", "labels", "creationTimestamp")  # never annotations (may hold the key)


def read_secret_metadata(context: str | None, kubeconfig: str | None, namespaces: Iterable[str],
                         timeout: float = 5.0) -> tuple[list[dict], list[str], dict[str, str]]:
    """(Secret objects carrying metadata only, the namespaces that could be listed, why each other one
    could not) for TLS checks (h9-tls, issue #14). One LIST per namespace asking the API server for
    PartialObjectMetadataList: the answer has names and labels, never ``data``, and of its ``metadata``
    only name, namespace, labels and creationTimestamp are kept (annotations can hold a
    last-applied-configuration, i.e. the key itself). RBAC still needs ``list secrets`` there (the
    optional Role in deploy/rbac/grader-secret-names.yaml); a namespace that refuses (403) or fails is
    left out, so its Secrets stay "cannot verify"."""
    from graders import deadline

    with deadline.within():
        api, name, server = new_api_client(context, kubeconfig, timeout=timeout)
        try:
            reader = Reader(api, name, server, timeout)
            objects: list[dict] = []
            listed: list[str] = []
            refused: dict[str, str] = {}
            for ns in dict.fromkeys(namespaces):
                try:
                    doc = reader.get_json(f"/api/v1/namespaces/{ns}/secrets", f"Secret names in {ns}",
                                          accept=METADATA_LIST_ACCEPT)
                except ClusterError as err:
                    refused[ns] = _one_line(err)
                    continue
                listed.append(ns)
                for item in doc.get("items") or []:
                    md = item.get("metadata") if isinstance(item, dict) else None
                    if isinstance(md, dict) and isinstance(md.get("name"), str):
                        objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": {
                            k: md[k] for k in SECRET_METADATA_KEPT if k in md}})
            return objects, listed, refused
        finally:
            api.close()
