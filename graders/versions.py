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
