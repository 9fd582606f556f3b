"""The one place the course pins its toolchain. Everything else (cluster setup, doctor, the
setup chapter, tests) reads these values.

Istio 1.30 supports Kubernetes 1.32-1.36 (istio.io 1.30 release announcement); kind v0.31.0's
default node image is Kubernetes 1.35.0, inside that range.
"""

ISTIO_VERSION = "1.30.3"
ISTIO_MINOR = "1.30"
KIND_VERSION = "v0.31.0"
KIND_NODE_IMAGE = (
    "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f"
)
KUBERNETES_VERSION = "1.35.0"
# Kubernetes minor versions Istio 1.30 is supported on; kubectl must be within one minor of the node.
SUPPORTED_KUBERNETES = ("1.32", "1.33", "1.34", "1.35", "1.36")
CLUSTER_NAME = "istio-lab"
COURSE_LABEL = "app.kubernetes.io/part-of"
COURSE_NAME = "istio-gateway-course"
# Set (with COURSE_LABEL) on every object `lab setup/solve` or `cluster up` creates: "01".."05" or "baseline".
LAB_LABEL = "istio-gateway-course/lab"
# Node label the course's kind config sets; `cluster down` deletes only a cluster whose node carries it.
CLUSTER_MARKER_LABEL = "istio-gateway-course/cluster"

# --- install commands ---------------------------------------------------------------------------
# Printed for the learner (setup chapter, `python -m graders doctor`); never run by the course.
# Each tool's documented download, with the pinned version filled in.


def platform_ids(system: str | None = None, machine: str | None = None) -> tuple[str, str]:
    """(os, arch) as the download URLs spell them: linux|darwin, amd64|arm64."""
    import platform

    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "amd64"
    return ("darwin" if system == "darwin" else "linux"), arch


def install_commands(tool: str, *, system: str | None = None, machine: str | None = None,
                     istio_version: str = ISTIO_VERSION) -> list[str]:
    """Shell lines that install the pinned ``tool`` (kind, kubectl, istioctl) for this platform."""
    os_id, arch = platform_ids(system, machine)
    kubectl_version = f"v{KUBERNETES_VERSION}"
    if tool == "kind":
        return [f"curl -Lo ./kind https://kind.sigs.k8s.io/dl/{KIND_VERSION}/kind-{os_id}-{arch}",
                "chmod +x ./kind && sudo mv ./kind /usr/local/bin/kind"]
    if tool == "kubectl":
        return [f"curl -LO https://dl.k8s.io/release/{kubectl_version}/bin/{os_id}/{arch}/kubectl",
                "chmod +x ./kubectl && sudo mv ./kubectl /usr/local/bin/kubectl"]
    if tool == "istioctl":
        target = "arm64" if arch == "arm64" else "x86_64"
        return [f"curl -L https://istio.io/downloadIstio | ISTIO_VERSION={istio_version} TARGET_ARCH={target} sh -",
                f'export PATH="$PWD/istio-{istio_version}/bin:$PATH"']
    if tool == "docker":
        return ["install Docker Engine (Linux) or Docker Desktop (macOS), then start it: https://docs.docker.com/get-docker/"]
    raise ValueError(f"no install commands for {tool!r}")


def pinned_toolchain() -> dict[str, str]:
    """What the course was checked with, for the setup chapter's table."""
    low, high = kubectl_minor_range()
    return {"istioctl": ISTIO_VERSION, "kind": KIND_VERSION, "kind node image": KIND_NODE_IMAGE,
            "kubectl": f"v{KUBERNETES_VERSION} (v1.{low} to v1.{high} work)", "Kubernetes": KUBERNETES_VERSION}


def kubectl_minor_range() -> tuple[int, int]:
    """kubectl is supported within one minor version of the API server (Kubernetes version skew policy)."""
    minor = int(KUBERNETES_VERSION.split(".")[1])
    return minor - 1, minor + 1

# h10-gwapi (issue #15): the Gateway API release Istio 1.30 is built against (go.mod: sigs.k8s.io/gateway-api v1.5.1).
GATEWAY_API_VERSION = "v1.5.1"
# h13-gwapi (issue #15): `cluster up` installs the standard channel of that release on the learner's machine
# with `kubectl apply --server-side -f` (the v1.5 bundle is meant for server-side apply; gateway-api-facts.md 1.1).
GATEWAY_API_CRDS_URL = (f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API_VERSION}/"
                        "standard-install.yaml")
# The annotation every CRD of a Gateway API bundle carries (istiod reads it too: pkg/kube/kclient/crdwatcher.go).
GATEWAY_API_BUNDLE_ANNOTATION = "gateway.networking.k8s.io/bundle-version"
