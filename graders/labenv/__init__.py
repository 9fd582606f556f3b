"""The lab environment: `cluster up/down`, `doctor`, and `lab setup/solve/reset/list`.

These are the only parts of the project that change a cluster. Two edges do the writing, so both
can be shown without acting (``--dry-run``) and tested without a cluster:

- ``runner``: every external command (kind, istioctl, kubectl) goes through one ``Runner``.
- ``kube``: every Kubernetes object is created, patched and deleted through the kubernetes
  client, and only when it carries the course's labels (``ownership``).
"""
