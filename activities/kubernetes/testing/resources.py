"""The kinds the API server double serves, with the schema facts its behaviour depends on."""

from __future__ import annotations

from dataclasses import dataclass, field

from activities.kubernetes.testing.patches import MergeKeys, table_merge_keys
from activities.kubernetes.testing.selectors import DEFAULT_FIELDS

# patchMergeKey of the lists in the built-in types used here (k8s.io/api, `patchMergeKey`
# struct tags); lists not named are atomic and a strategic merge patch replaces them.
_POD_SPEC_KEYS: dict[tuple[str, ...], str] = {
    ("containers",): "name",
    ("initContainers",): "name",
    ("ephemeralContainers",): "name",
    ("env",): "name",
    ("containers", "ports"): "containerPort",
    ("initContainers", "ports"): "containerPort",
    ("volumes",): "name",
    ("volumeMounts",): "mountPath",
    ("volumeDevices",): "devicePath",
    ("imagePullSecrets",): "name",
    ("hostAliases",): "ip",
    ("topologySpreadConstraints",): "topologyKey",
    ("resourceClaims",): "name",
    ("conditions",): "type",
    ("ownerReferences",): "uid",
}
_SERVICE_KEYS: dict[tuple[str, ...], str] = {
    ("spec", "ports"): "port",
    ("conditions",): "type",
    ("ownerReferences",): "uid",
}
_META_KEYS: dict[tuple[str, ...], str] = {("ownerReferences",): "uid"}


@dataclass(frozen=True)
class Kind:
    """One resource: where it is served and how writes to it behave."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()
    # None: a custom resource (no strategic merge patch, 415 like the real server).
    merge_keys: MergeKeys | None = None
    # Whether metadata.generation is kept (bumped on changes outside metadata and status).
    generation: bool = False
    short_names: tuple[str, ...] = ()
    field_selectors: tuple[str, ...] = DEFAULT_FIELDS
    categories: tuple[str, ...] = field(default=())
    # The real storage's ReturnDeletedObject: DELETE answers with the object, not a Status.
    returns_deleted: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


_POD_KEYS = table_merge_keys(_POD_SPEC_KEYS)

DEPLOYMENTS = Kind(
    "apps",
    "v1",
    "deployments",
    "Deployment",
    merge_keys=_POD_KEYS,
    subresources=("status", "scale"),
    generation=True,
    short_names=("deploy",),
    categories=("all",),
)
REPLICA_SETS = Kind(
    "apps",
    "v1",
    "replicasets",
    "ReplicaSet",
    merge_keys=_POD_KEYS,
    subresources=("status", "scale"),
    generation=True,
    short_names=("rs",),
    categories=("all",),
)
PODS = Kind(
    "",
    "v1",
    "pods",
    "Pod",
    merge_keys=_POD_KEYS,
    subresources=("status",),
    short_names=("po",),
    field_selectors=(*DEFAULT_FIELDS, "status.phase", "spec.nodeName"),
    categories=("all",),
    returns_deleted=True,
)
SERVICES = Kind(
    "",
    "v1",
    "services",
    "Service",
    merge_keys=table_merge_keys(_SERVICE_KEYS),
    subresources=("status",),
    short_names=("svc",),
    categories=("all",),
    returns_deleted=True,
)
CONFIG_MAPS = Kind(
    "",
    "v1",
    "configmaps",
    "ConfigMap",
    merge_keys=table_merge_keys(_META_KEYS),
    short_names=("cm",),
)
INGRESSES = Kind(
    "networking.k8s.io",
    "v1",
    "ingresses",
    "Ingress",
    merge_keys=table_merge_keys(_META_KEYS),
    subresources=("status",),
    generation=True,
    short_names=("ing",),
)
# Custom resources: no merge keys (the API server refuses strategic merge patches for them).
VIRTUAL_SERVICES = Kind(
    "networking.istio.io",
    "v1",
    "virtualservices",
    "VirtualService",
    generation=True,
    short_names=("vs",),
)
DESTINATION_RULES = Kind(
    "networking.istio.io",
    "v1",
    "destinationrules",
    "DestinationRule",
    generation=True,
    short_names=("dr",),
)
HTTP_ROUTES = Kind(
    "gateway.networking.k8s.io",
    "v1",
    "httproutes",
    "HTTPRoute",
    generation=True,
    subresources=("status",),
)
ROLLOUTS = Kind(
    "argoproj.io",
    "v1alpha1",
    "rollouts",
    "Rollout",
    generation=True,
    subresources=("status", "scale"),
    short_names=("ro",),
)
ANALYSIS_TEMPLATES = Kind(
    "argoproj.io", "v1alpha1", "analysistemplates", "AnalysisTemplate", generation=True
)

NAMESPACES = Kind(
    "",
    "v1",
    "namespaces",
    "Namespace",
    namespaced=False,
    merge_keys=table_merge_keys(_META_KEYS),
    subresources=("status",),
    short_names=("ns",),
)

ALL_KINDS: tuple[Kind, ...] = (
    NAMESPACES,
    DEPLOYMENTS,
    REPLICA_SETS,
    PODS,
    SERVICES,
    CONFIG_MAPS,
    INGRESSES,
    VIRTUAL_SERVICES,
    DESTINATION_RULES,
    HTTP_ROUTES,
    ROLLOUTS,
    ANALYSIS_TEMPLATES,
)
