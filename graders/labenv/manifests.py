"""The YAML files the lab environment applies, read the way the graders read them (safe loader,
size limits, ``file:line`` origins), with IstioOperators kept apart: they are installed with
istioctl, never sent to the API server (Istio has not served that kind since 1.21)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graders.errors import InputError
from graders.labenv.kube import Ref
from graders.labenv.runner import relpath
from graders.objects import flatten
from graders.yamlio import expand_paths, load_documents

ISTIO_OPERATOR = ("install.istio.io", "IstioOperator")
# Kinds without a namespace, for naming objects without asking a cluster (dry runs).
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                            "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "PriorityClass",
                            "StorageClass", "IngressClass", "Node", "PersistentVolume"})
# Applied first (and deleted last) so namespaced objects always have their namespace.
KIND_ORDER = {"Namespace": 0, "ServiceAccount": 1, "ConfigMap": 1, "Service": 2, "Deployment": 3}


@dataclass(frozen=True)
class Manifest:
    obj: dict
    origin: str  # "labs/lab03/start/bookinfo-test.yaml:12"

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind"))

    @property
    def is_istio_operator(self) -> bool:
        return (str(self.obj.get("apiVersion", "")).split("/")[0], self.kind) == ISTIO_OPERATOR


def ref(m: Manifest) -> Ref:
    """The object's identity as `kubectl apply` would resolve it (no namespace: default)."""
    md = m.obj["metadata"]
    ns = "" if m.kind in CLUSTER_SCOPED else str(md.get("namespace") or "default")
    return Ref(m.kind, ns, str(md["name"]), str(m.obj["apiVersion"]))


def load(path: Path) -> list[Manifest]:
    """Every object in a file or a directory of YAML files, in apply order (namespaces first)."""
    out: list[Manifest] = []
    for file in expand_paths([str(path)]):
        for doc in load_documents(file):
            for item in flatten(doc):
                obj = item.obj
                where = f"{relpath(file)}:{item.origin.rsplit(':', 1)[-1]}" if ":" in item.origin else relpath(file)
                if not isinstance(obj, dict) or not isinstance(obj.get("apiVersion"), str) \
                        or not isinstance(obj.get("kind"), str):
                    raise InputError(f"{where}: not a Kubernetes object (apiVersion and kind are required); fix the "
                                     "lab file")
                md = obj.get("metadata")
                if not isinstance(md, dict) or not isinstance(md.get("name"), str) or not md["name"]:
                    raise InputError(f"{where}: {obj['kind']} has no metadata.name; give it one")
                out.append(Manifest(obj, where))
    return sorted(out, key=lambda m: KIND_ORDER.get(m.kind, 9))


def istio_operator_files(path: Path) -> list[tuple[Path, dict]]:
    """Files under ``path`` holding an IstioOperator (one per file, as ``istioctl install -f`` wants)."""
    out = []
    for file in expand_paths([str(path)]):
        iops = [d.obj for d in load_documents(file) if isinstance(d.obj, dict)
                and (str(d.obj.get("apiVersion", "")).split("/")[0], d.obj.get("kind")) == ISTIO_OPERATOR]
        if len(iops) > 1:
            raise InputError(f"{relpath(file)}: {len(iops)} IstioOperators in one file; istioctl installs one per "
                             "file, so split them")
        if iops:
            out.append((file, iops[0]))
    return out
