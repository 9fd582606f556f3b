"""Graders for the Istio ingress gateway course.

Data flows one way: sources (live cluster, snapshot file, simulated baseline + learner YAML)
-> ``state.State`` -> analyzers / request trace -> lab checks -> reports. Everything between the
edges is a pure function over an immutable ``State``.
"""

__version__ = "0.1.0"
