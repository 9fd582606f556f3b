"""Reading and writing Kubernetes objects through the kubernetes client's dynamic API.

The dynamic client discovers what the server serves, so Istio kinds and built-in kinds go through
one code path and a kind the cluster does not serve (no Istio yet) is simply absent. Patches are
JSON merge patches: the only patch type custom resources accept.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graders.deadline import DeadlineExceeded
from graders.errors import ClusterError
from graders.labenv.residents import ApiResource
from graders.sources.live import METADATA_ACCEPT, METADATA_LIST_ACCEPT

MERGE_PATCH = "application/merge-patch+json"
# Kinds whose contents the course never reads, not even its own: only their metadata is asked for.
UNREAD_KINDS = frozenset({"ConfigMap", "Secret"})
PAGE = 500  # items per LIST page


@dataclass(frozen=True, order=True)
class Ref:
    """One object's identity: what messages print and what reset deletes."""

    kind: str
    namespace: str  # "" for cluster-scoped kinds
    name: str
    api_version: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    @classmethod
    def of(cls, obj: dict) -> Ref:
        md = obj.get("metadata") or {}
        return cls(str(obj.get("kind", "")), str(md.get("namespace") or ""), str(md.get("name", "")),
                   str(obj.get("apiVersion", "")))


class Kube:
    """The course cluster as the kubernetes client sees it (one kubeconfig context).

    Every API step runs under a deadline (``step_deadline`` seconds, or the shorter one in force;
    graders.deadline): a server that accepts and never answers, trickles, or a credential plugin
    that hangs ends the command with one line naming the step.
    """

    def __init__(self, context: str, kubeconfig: str | None = None, *, timeout: float = 20.0,
                 step_deadline: float | None = None):
        from kubernetes.dynamic import DynamicClient

        from graders import deadline
        from graders.sources.live import Reader, new_api_client

        self.context, self.timeout = context, timeout
        self.step_deadline = step_deadline or deadline.DEFAULT_WRITE_DEADLINE
        with deadline.within(self.step_deadline) as dl, dl.doing(f"loading the credentials of context {context}"):
            api_client, self.context, self.server = new_api_client(context, kubeconfig, timeout=timeout)
        self.reader = Reader(api_client, self.context, self.server, timeout)
        self._cache_dir = tempfile.TemporaryDirectory(prefix="graders-discovery-")
        try:
            with self._errors("discover the API"):
                self.dyn = DynamicClient(api_client, cache_file=str(Path(self._cache_dir.name) / "discovery.json"))
        except BaseException:
            self._cache_dir.cleanup()
            raise
        self._resources: dict[tuple[str, str], Any] = {}

    def close(self) -> None:
        self._cache_dir.cleanup()

    def _t(self) -> tuple[float, float]:
        """Socket timeouts for one request under the deadline in force."""
        from graders import deadline

        dl = deadline.current()
        return dl.timeouts(self.timeout) if dl is not None else (self.timeout, self.timeout)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError
        from urllib3.exceptions import HTTPError

        from graders import deadline

        with deadline.within(self.step_deadline) as dl, dl.doing(f"trying to {doing} (context {self.context})"):
            try:
                yield
            except NotFoundError:
                raise
            except (ApiException, DynamicApiError) as err:
                if dl.passed():
                    raise dl.error() from None
                status = getattr(err, "status", None)
                reason = _status_message(err)
                if status in (401, 403):
                    raise ClusterError(f"the cluster refused to {doing} ({status}: {reason}); use the admin context "
                                       f"kind created ({self.context})") from None
                raise ClusterError(f"could not {doing}: {status} {reason}") from None
            except (HTTPError, OSError, ValueError) as err:  # ValueError: the discovery client's view of a cut
                if dl.passed():
                    raise dl.error() from None
                raise ClusterError(f"cannot reach the cluster of context {self.context} at {self.server} while "
                                   f"trying to {doing} ({type(err).__name__}); is it running? Check with `kind get "
                                   "clusters`, create it with `python -m graders cluster up`") from None
            dl.check()

    def resource(self, api_version: str, kind: str) -> Any | None:
        """The served resource for (apiVersion, kind), or None when the server does not serve it."""
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        key = (api_version, kind)
        if key not in self._resources:
            try:
                with self._errors(f"discover {kind}"):
                    self._resources[key] = self.dyn.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                self._resources[key] = None
        return self._resources[key]

    def namespaced(self, api_version: str, kind: str) -> bool:
        res = self.resource(api_version, kind)
        return bool(res.namespaced) if res is not None else kind != "Namespace"

    def _need(self, ref: Ref) -> Any:
        res = self.resource(ref.api_version, ref.kind)
        if res is None:
            from graders import versions

            what = (f"are the Gateway API CRDs installed? `python -m graders cluster up` installs "
                    f"{versions.GATEWAY_API_VERSION}" if ref.api_version.startswith("gateway.networking.k8s.io/")
                    else "is Istio installed? Run `python -m graders cluster up`")
            raise ClusterError(f"the cluster does not serve {ref.api_version} {ref.kind} (needed for {ref}); {what}")
        return res

    def get(self, ref: Ref) -> dict | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        res = self.resource(ref.api_version, ref.kind)
        if res is None:
            return None
        metadata_only = ref.kind in UNREAD_KINDS and ref.api_version == "v1"
        try:
            with self._errors(f"read {ref}"):
                got = res.get(name=ref.name, namespace=ref.namespace or None, _request_timeout=self._t(),
                              **({"header_params": {"Accept": METADATA_ACCEPT}} if metadata_only else {})).to_dict()
        except NotFoundError:
            return None
        if metadata_only:  # what the course may know of a Secret or ConfigMap: that it exists, and its labels
            return {"apiVersion": ref.api_version, "kind": ref.kind, "metadata": got.get("metadata") or {}}
        return got

    def create(self, obj: dict) -> dict:
        ref = Ref.of(obj)
        with self._errors(f"create {ref}"):
            return self._need(ref).create(body=obj, namespace=ref.namespace or None,
                                          _request_timeout=self._t()).to_dict()

    def patch(self, ref: Ref, body: dict) -> dict:
        with self._errors(f"update {ref}"):
            return self._need(ref).patch(body=body, name=ref.name, namespace=ref.namespace or None,
                                         content_type=MERGE_PATCH, _request_timeout=self._t()).to_dict()

    def delete(self, ref: Ref) -> bool:
        """Delete one object; False if it was already gone."""
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            with self._errors(f"delete {ref}"):
                self._need(ref).delete(name=ref.name, namespace=ref.namespace or None,
                                       _request_timeout=self._t())
        except NotFoundError:
            return False
        return True

    def list(self, api_version: str, kind: str, *, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]:
        """Objects of one kind (all namespaces unless one is given); [] if the kind is not served.
        One logical LIST, read in pages (``limit`` and ``continue``)."""
        res = self.resource(api_version, kind)
        if res is None:
            return []
        items: list[dict] = []
        token = None
        with self._errors(f"list {kind}"):
            while True:
                page = res.get(namespace=namespace, label_selector=label_selector, limit=PAGE,
                               _continue=token, _request_timeout=self._t()).to_dict()
                items += page.get("items") or []
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    break
        for item in items:  # list items of built-in kinds come without kind/apiVersion
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
        return items

    def names(self, api_version: str, kind: str, namespace: str) -> list[dict]:
        """Only the metadata of one kind's objects in a namespace (PartialObjectMetadataList): how the
        course sees that Secrets and ConfigMaps exist without reading what they hold."""
        res = self.resource(api_version, kind)
        if res is None:
            return []
        with self._errors(f"list {kind} names"):
            items = res.get(namespace=namespace, header_params={"Accept": METADATA_LIST_ACCEPT},
                            _request_timeout=self._t()).to_dict().get("items") or []
        return [{"apiVersion": api_version, "kind": kind, "metadata": i.get("metadata") or {}} for i in items]

    # -- what a namespace holds, for `lab reset` (graders.labenv.residents) ------------------------------
    def namespaced_resources(self) -> tuple[list[ApiResource], list[str]]:
        """Every namespaced, listable, creatable resource the server serves (each group in its
        preferred version), as ``kubectl api-resources --namespaced --verbs=list`` finds them; and
        the API groups whose discovery failed (what they hold cannot be seen)."""
        from graders.labenv.residents import namespaced_resources

        unseen: list[str] = []
        out = namespaced_resources("v1", self._discovery("/api/v1", "core API discovery"))
        groups = self._discovery("/apis", "API discovery").get("groups") or []
        for g in groups:
            gv = str(((g or {}).get("preferredVersion") or {}).get("groupVersion") or "")
            if not gv:
                continue
            try:
                out += namespaced_resources(gv, self._discovery(f"/apis/{gv}", f"API discovery of {gv}"))
            except ClusterError as err:
                if isinstance(err, DeadlineExceeded):
                    raise
                unseen.append(f"{gv} ({err})")
        return out, unseen

    def _discovery(self, path: str, what: str) -> dict:
        from graders import deadline

        with deadline.within(self.step_deadline):
            return self.reader.get_json(path, what)

    def namespace_objects(self, namespace: str, resources: list[ApiResource]) -> tuple[list[dict], list[str]]:
        """Metadata of every object of ``resources`` in ``namespace`` (never data: a metadata-only
        LIST, paged); and the resources that could not be listed, with why."""
        from graders import deadline
        from graders.sources.live import Missing

        out: list[dict] = []
        unlisted: list[str] = []
        for r in resources:
            try:
                with deadline.within(self.step_deadline):
                    for doc in self.reader.pages(r.path(namespace), f"{r.plural} in namespace {namespace}",
                                                 missing_ok=True, accept=METADATA_LIST_ACCEPT):
                        out += [{"apiVersion": r.api_version, "kind": r.kind, "metadata": item["metadata"]}
                                for item in doc.get("items") or []
                                if isinstance(item, dict) and isinstance(item.get("metadata"), dict)]
            except Missing:
                continue  # the resource went away between discovery and now (a CRD deleted)
            except ClusterError as err:
                if isinstance(err, DeadlineExceeded):
                    raise
                unlisted.append(f"{r.plural}.{r.group or 'core'} ({err})")
        return out, unlisted


def _status_message(err: Exception) -> str:
    import json

    body = getattr(err, "body", None)
    try:
        data = json.loads(body) if isinstance(body, (str, bytes)) else None
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(getattr(err, "reason", "") or err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
