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

from graders.errors import ClusterError

MERGE_PATCH = "application/merge-patch+json"
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


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
    """The course cluster as the kubernetes client sees it (one kubeconfig context)."""

    def __init__(self, context: str, kubeconfig: str | None = None, *, timeout: float = 20.0):
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException
        from kubernetes.dynamic import DynamicClient

        self.context, self.timeout = context, timeout
        path = kubeconfig or _default_kubeconfig()
        try:
            # No file given: the client's own default, which merges every file a $KUBECONFIG list names.
            api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        except ConfigException as err:
            raise ClusterError(f"kube context {context!r} is not usable from {path} ({err}); create the cluster "
                               f"with `python -m graders cluster up`, or restore its context with "
                               f"`kind export kubeconfig --name {context.removeprefix('kind-')}`") from None
        except (OSError, TypeError) as err:
            raise ClusterError(f"cannot read kubeconfig {path}: {err}; create the cluster with "
                               "`python -m graders cluster up`") from None
        api_client.configuration.retries = 1
        self._cache_dir = tempfile.TemporaryDirectory(prefix="graders-discovery-")
        self.server = api_client.configuration.host
        with self._errors("discover the API"):
            self.dyn = DynamicClient(api_client, cache_file=str(Path(self._cache_dir.name) / "discovery.json"))
        self._resources: dict[tuple[str, str], Any] = {}

    def close(self) -> None:
        self._cache_dir.cleanup()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError
        from urllib3.exceptions import HTTPError

        try:
            yield
        except NotFoundError:
            raise
        except (ApiException, DynamicApiError) as err:
            status = getattr(err, "status", None)
            reason = _status_message(err)
            if status in (401, 403):
                raise ClusterError(f"the cluster refused to {doing} ({status}: {reason}); use the admin context "
                                   f"kind created ({self.context})") from None
            raise ClusterError(f"could not {doing}: {status} {reason}") from None
        except (HTTPError, OSError) as err:
            raise ClusterError(f"cannot reach the cluster of context {self.context} at {self.server} while trying "
                               f"to {doing} ({type(err).__name__}); is it running? Check with `kind get clusters`, "
                               "create it with `python -m graders cluster up`") from None

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
            raise ClusterError(f"the cluster does not serve {ref.api_version} {ref.kind} (needed for {ref}); "
                               "is Istio installed? Run `python -m graders cluster up`")
        return res

    def get(self, ref: Ref) -> dict | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        res = self.resource(ref.api_version, ref.kind)
        if res is None:
            return None
        try:
            with self._errors(f"read {ref}"):
                return res.get(name=ref.name, namespace=ref.namespace or None,
                               _request_timeout=self.timeout).to_dict()
        except NotFoundError:
            return None

    def create(self, obj: dict) -> dict:
        ref = Ref.of(obj)
        with self._errors(f"create {ref}"):
            return self._need(ref).create(body=obj, namespace=ref.namespace or None,
                                          _request_timeout=self.timeout).to_dict()

    def patch(self, ref: Ref, body: dict) -> dict:
        with self._errors(f"update {ref}"):
            return self._need(ref).patch(body=body, name=ref.name, namespace=ref.namespace or None,
                                         content_type=MERGE_PATCH, _request_timeout=self.timeout).to_dict()

    def delete(self, ref: Ref) -> bool:
        """Delete one object; False if it was already gone."""
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            with self._errors(f"delete {ref}"):
                self._need(ref).delete(name=ref.name, namespace=ref.namespace or None,
                                       _request_timeout=self.timeout)
        except NotFoundError:
            return False
        return True

    def list(self, api_version: str, kind: str, *, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]:
        """Objects of one kind (all namespaces unless one is given); [] if the kind is not served."""
        res = self.resource(api_version, kind)
        if res is None:
            return []
        with self._errors(f"list {kind}"):
            items = res.get(namespace=namespace, label_selector=label_selector,
                            _request_timeout=self.timeout).to_dict().get("items") or []
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
            items = res.get(namespace=namespace, header_params={"Accept": METADATA_ONLY},
                            _request_timeout=self.timeout).to_dict().get("items") or []
        return [{"apiVersion": api_version, "kind": kind, "metadata": i.get("metadata") or {}} for i in items]


def _default_kubeconfig() -> str:
    """How messages name the kubeconfig the client reads when none is given."""
    import os

    return os.environ.get("KUBECONFIG") or "~/.kube/config"


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
