"""Any wrong shape in a learner's YAML becomes a finding, never a crash: every field of realistic
objects is replaced in turn by values of every other type, and the engine must still analyze and
trace (the bad object reported as MANIFEST-INVALID or simply ignored)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from engine_helpers import (
    HTTPBIN_SERVICE_ENTRY,
    PRODUCTPAGE_TWO_PORTS,
    docs,
    gateway,
    productpage_deployment,
    virtual_service,
)

from graders.analyzers import analyze
from graders.objects import RawObject
from graders.sources.build import build_state
from graders.sources.simulated import baseline_objects, render_operators
from graders.trace import Request, trace

DESTINATION_RULE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  subsets: [{name: v1, labels: {version: v1}}]
"""
POD = """
apiVersion: v1
kind: Pod
metadata:
  name: productpage-v1-5d9c-abcde
  namespace: default
  labels: {app: productpage, version: v1, pod-template-hash: 5d9c}
  creationTimestamp: "2026-03-01T10:00:00Z"
  ownerReferences: [{kind: ReplicaSet, name: productpage-v1-5d9c}]
spec:
  containers:
  - name: productpage
    ports: [{containerPort: 9080, name: http}]
    env: [{name: A, value: b}]
status:
  conditions: [{type: Ready, status: "True"}]
"""
DEPLOYMENT = productpage_deployment(1, "status: {readyReplicas: 1}\n")
OPERATOR = """
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: second}
spec:
  profile: empty
  components:
    ingressGateways:
    - name: gw2
      enabled: true
      label: {app: gw2, istio: gw2}
      k8s: {service: {type: NodePort, ports: [{name: http2, port: 80, targetPort: 8080, nodePort: 30081}]}}
"""
RICH_MATCH = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: rich}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - uri: {prefix: /productpage}
      ignoreUriCase: true
      method: {exact: GET}
      authority: {regex: ".*"}
      scheme: {exact: http}
      headers: {x-a: {exact: "1"}, x-b: {}}
      withoutHeaders: {x-c: {regex: "*"}}
      queryParams: {u: {exact: normal}}
      sourceLabels: {istio: ingressgateway}
      sourceNamespace: istio-system
      port: 8080
    - gateways: [bookinfo-gateway]
    route:
    - destination: {host: productpage, port: {number: 9080}}
"""
ODD_VALUES: tuple[Any, ...] = (None, "x", 7, True, [], {}, ["x"], {"a": 1})


def leaf_paths(node: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaf_paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from leaf_paths(v, (*path, i))


def replaced(obj: Any, path: tuple, value: Any) -> Any:
    out = copy.deepcopy(obj)
    if not path:
        return value
    cur = out
    for part in path[:-1]:
        cur = cur[part]
    cur[path[-1]] = value
    return out


@pytest.fixture(scope="module")
def base() -> list[RawObject]:
    return render_operators(baseline_objects())


DOCUMENTS = list(yaml.safe_load_all(docs(gateway(), virtual_service(), RICH_MATCH, HTTPBIN_SERVICE_ENTRY,
                                          DESTINATION_RULE, PRODUCTPAGE_TWO_PORTS, POD, DEPLOYMENT)))
OPERATOR_DOC = yaml.safe_load(OPERATOR)


@pytest.mark.parametrize("index", range(len(DOCUMENTS)), ids=[d["kind"] for d in DOCUMENTS])
def test_every_field_of_every_type_is_survived(base, index):
    original = DOCUMENTS[index]
    others = [RawObject(d, f"learner.yaml:{i}", 1000 + i) for i, d in enumerate(DOCUMENTS) if i != index]
    for path in leaf_paths(original):
        for value in ODD_VALUES:
            broken = replaced(original, path, value)
            state = build_state([*base, *others, RawObject(broken, "learner.yaml:99", 2000)], "simulated")
            codes = {f.code for f in analyze(state)}
            assert codes is not None
            trace(state, Request(path="/productpage"))


def test_a_broken_istio_operator_never_crashes_rendering(base):
    for path in leaf_paths(OPERATOR_DOC):
        for value in ODD_VALUES:
            raws = render_operators([RawObject(replaced(OPERATOR_DOC, path, value), "iop.yaml:1", 1)])
            state = build_state([*base, *raws], "simulated")
            analyze(state)
