"""The built-in simulated lab cluster: what `cluster up` installs, as raw objects.

It is read from the very files `cluster up` applies (labs/cluster/), with the IstioOperator
rendered by ``istio_install``: one source of truth for the real and the simulated cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from graders.objects import RawObject
from graders.sources import istio_install
from graders.yamlio import load_documents

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = REPO_ROOT / "labs" / "cluster"
ISTIO_OPERATOR_FILE = CLUSTER_DIR / "istio-operator.yaml"
NAMESPACES_FILE = CLUSTER_DIR / "namespaces.yaml"
BOOKINFO_FILE = CLUSTER_DIR / "bookinfo.yaml"


def render_operators(raws: Iterable[RawObject]) -> list[RawObject]:
    """Each IstioOperator followed by the objects istioctl would apply for it, minus what that install
    prunes from the objects before it (``istio_install.install``): installing a file under the course
    installation's name, or with no name, removes what the new file no longer renders."""
    out: list[RawObject] = []
    for raw in raws:
        out.append(raw)
        obj = raw.obj
        if isinstance(obj, dict) and obj.get("kind") == "IstioOperator" and \
                str(obj.get("apiVersion", "")).startswith("install.istio.io/"):
            applied, gone = istio_install.install([r.obj for r in out if isinstance(r.obj, dict)], obj)
            if gone:
                out = [r for r in out if not (isinstance(r.obj, dict) and istio_install.key(r.obj) in gone)]
            out.extend(RawObject(o, f"{raw.origin} (rendered)", raw.seq) for o in applied)
    return out


def outbound_policy(raws: Iterable[RawObject]) -> str | None:
    """The mesh-wide outboundTrafficPolicy the last control-plane IstioOperator sets."""
    mode = None
    for raw in raws:
        obj = raw.obj
        if isinstance(obj, dict) and obj.get("kind") == "IstioOperator" and isinstance(obj.get("spec"), dict) \
                and istio_install.includes_control_plane(obj["spec"]):
            mode = istio_install.outbound_policy(obj["spec"]) or "ALLOW_ANY"
    return mode


# h13-gwapi (issue #15): the GatewayClasses istiod creates at start-up when the Gateway API CRDs are
# installed (`cluster up` installs them): create-only, with the descriptions of Istio 1.30.3's
# pilot/pkg/config/kube/gatewaycommon/classinfo.go:108-123 and the status gatewayclass.go:110-123 writes.
ISTIOD_GATEWAY_CLASSES = (("istio", "istio.io/gateway-controller", "The default Istio GatewayClass"),
                          ("istio-remote", "istio.io/unmanaged-gateway",
                           "Remote to this cluster. Does not deploy or affect configuration."))


def istiod_gateway_classes(seq_start: int = 0) -> list[RawObject]:
    """GatewayClass ``istio`` and ``istio-remote`` as istiod creates them on the course cluster."""
    return [RawObject({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                       "metadata": {"name": name},
                       "spec": {"controllerName": controller, "description": description},
                       "status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                                                  "message": "Handled by Istio controller"}]}},
                      "baseline: created by istiod (GatewayClass controller)", seq_start + i)
            for i, (name, controller, description) in enumerate(ISTIOD_GATEWAY_CLASSES)]


def baseline_objects() -> list[RawObject]:
    """The course cluster after `cluster up`: namespaces, Istio, Bookinfo, and the GatewayClasses istiod
    creates once `cluster up` has installed the Gateway API CRDs."""
    raws: list[RawObject] = []
    for path in (NAMESPACES_FILE, ISTIO_OPERATOR_FILE, BOOKINFO_FILE):
        docs = load_documents(path, seq_start=len(raws))
        raws.extend(RawObject(r.obj, f"baseline {path.relative_to(REPO_ROOT)}:{r.origin.rsplit(':', 1)[1]}", r.seq)
                    for r in docs)
    raws.extend(istiod_gateway_classes(len(raws)))
    return raws
