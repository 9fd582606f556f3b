"""Whose objects live in a namespace: may `lab reset` delete a course namespace?

Deleting a namespace deletes everything in it, so a course namespace is deleted only when every
object in it is accounted for. "Every object" is decided the way ``kubectl api-resources
--namespaced --verbs=list`` sees a cluster: each namespaced resource the API server serves (in its
group's preferred version) is listed, metadata only (Secrets and ConfigMaps never give their data).
An object is accounted for when it is

* the course's (``ownership.owned``: both course labels);
* put there by Kubernetes or Istio in every namespace (``SYSTEM_NAMED``: the ServiceAccount
  ``default``, the ConfigMaps ``kube-root-ca.crt`` and ``istio-ca-root-cert``);
* owned, through its ``ownerReferences`` chain, only by accounted objects of the same namespace
  (a course Deployment's ReplicaSets and Pods, a course Service's EndpointSlices): the garbage
  collector removes it with its owners. An owner that is not in the namespace is not assumed to be
  anyone's: the object keeps the namespace;
* the Endpoints the endpoints controller keeps for an accounted Service of the same name;
* already being deleted (``deletionTimestamp`` set): it goes whatever reset does.

Events are not looked at (``TRANSIENT``): controllers write them about every object and they expire
within the hour. Resources nobody may create (no ``create`` verb, e.g. metrics.k8s.io views of pods)
cannot hold a learner's object. A resource that cannot be listed (403, a broken aggregated API)
leaves the question open, and an open question keeps the namespace too.

The functions here are pure (objects in, verdicts out), so the dry run and the real run decide
alike: both call ``learner_objects`` on what the cluster holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from graders.labenv.ownership import owned

SYSTEM_NAMED = frozenset({("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt"),
                          ("ConfigMap", "istio-ca-root-cert")})
TRANSIENT = frozenset({("", "events"), ("events.k8s.io", "events")})


@dataclass(frozen=True)
class ApiResource:
    """One namespaced resource the server serves: where to list it and what its objects are."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/namespaces/{namespace}/{self.plural}"


def namespaced_resources(group_version: str, resource_list: Mapping) -> list[ApiResource]:
    """The resources of one discovery document (``APIResourceList``) a learner's object could be in:
    namespaced, listable, creatable, not a subresource, not transient."""
    group, _, version = group_version.rpartition("/")
    out = []
    for r in resource_list.get("resources") or []:
        if not isinstance(r, Mapping) or not isinstance(r.get("name"), str) or "/" in r["name"]:
            continue
        verbs = set(r.get("verbs") or [])
        if r.get("namespaced") and {"list", "create"} <= verbs and (group, r["name"]) not in TRANSIENT:
            out.append(ApiResource(group, version, r["name"], str(r.get("kind", ""))))
    return out


def _key(obj: Mapping) -> tuple[str, str]:
    return str(obj.get("kind", "")), str((obj.get("metadata") or {}).get("name", ""))


def learner_objects(objects: Sequence[Mapping]) -> list[Mapping]:
    """The objects of one namespace that are not accounted for (see the module docstring)."""
    by_uid = {str(md["uid"]): o for o in objects if (md := o.get("metadata") or {}).get("uid")}
    services = {str((o.get("metadata") or {}).get("name")): o for o in objects if o.get("kind") == "Service"}
    memo: dict[int, bool] = {}

    def accounted(obj: Mapping, seen: frozenset[int]) -> bool:
        if id(obj) in memo:
            return memo[id(obj)]
        if id(obj) in seen:  # an ownership cycle: nobody's for sure
            return False
        md = obj.get("metadata") or {}
        if owned(dict(obj)) or _key(obj) in SYSTEM_NAMED or md.get("deletionTimestamp"):
            result = True
        elif obj.get("kind") == "Endpoints" and _key(obj)[1] in services and not md.get("ownerReferences"):
            result = accounted(services[_key(obj)[1]], seen | {id(obj)})
        else:
            refs = [r for r in md.get("ownerReferences") or [] if isinstance(r, Mapping)]
            result = bool(refs) and all(str(r.get("uid")) in by_uid and
                                        accounted(by_uid[str(r.get("uid"))], seen | {id(obj)}) for r in refs)
        memo[id(obj)] = result
        return result

    return [o for o in objects if not accounted(o, frozenset())]


def describe(objects: Iterable[Mapping], limit: int = 5) -> str:
    """``Pod test/mine, ReplicaSet test/x ...`` for a message."""
    names = [f"{o.get('kind')} {(o.get('metadata') or {}).get('namespace', '')}/{_key(o)[1]}" for o in objects]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
