"""The Kubernetes Gateway API (gateway.networking.k8s.io) as Istio 1.30.3's istiod implements it.

A second API family beside the classic networking.istio.io one, in its own small modules:
``objects`` parses GatewayClass, Gateway, HTTPRoute and ReferenceGrant into frozen records;
``deploy`` predicts the ServiceAccount, Deployment and Service istiod creates for a Gateway of an Istio class;
``attach`` predicts the status istiod writes (route attachment per parentRef, backend resolution,
Gateway and listener conditions); ``routes`` builds the route table per Gateway and port; ``trace``
follows one request through it. Every reason string is istiod's own, cited by file:line of 1.30.3
(pilot/pkg/config/kube/gateway/...) where it is produced.
"""

GROUP = "gateway.networking.k8s.io"
VERSIONS = ("v1", "v1beta1")
# The GatewayClass controllerName istiod serves for the managed ingress class `istio`
# (pilot/pkg/config/kube/gatewaycommon/classinfo.go; pkg/config/constants/constants.go).
ISTIO_CONTROLLER = "istio.io/gateway-controller"
# Built-in classes a Gateway may name without a GatewayClass object: name -> controllerName.
BUILTIN_CLASSES = {"istio": ISTIO_CONTROLLER, "istio-remote": "istio.io/unmanaged-gateway"}
GATEWAY_KIND = "Gateway.gateway.networking.k8s.io"  # Meta.kind: kept apart from Istio's own Gateway
# Local port for `kubectl port-forward` advice: the course's kind cluster already maps host ports 8080 and
# 8443 to the classic ingress gateway (labs/cluster/kind-config.yaml.tmpl), so a forward there would fail
# with "address already in use".
PORT_FORWARD_LOCAL = 8088
