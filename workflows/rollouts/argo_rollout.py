"""An Argo Rollout manifest (``apiVersion: argoproj.io/v1alpha1, kind: Rollout``) as a
deployflow ``Rollout``: pure translation of the document into a deployflow/v1 body, which
``workflows/rollouts/spec.py`` then validates like any spec (docs/kubernetes.md, "Argo Rollout
manifests").

What deployflow needs and Argo does not say is derived, each overridable by an annotation
on the Rollout (or a label, for the environment):

- service: ``deployflow.io/service``, else ``metadata.name``
- environment: ``deployflow.io/environment``, else ``metadata.namespace``, else ``default``
- version: ``deployflow.io/version``, else the tag of the first container's image (the
  whole ``spec.template`` rolls out, every container as written)
- the worker's kubeconfig context: ``deployflow.io/context`` (else the worker's default)

The stable Deployment is ``spec.workloadRef.name``, else one named ``metadata.name``: the
team's Deployment, which deployflow never creates (``stable_deployment`` renders it from
the manifest's template for ``kubectl apply``). Steps and analysis keep their positions, so
a problem in them has the manifest's own path; problems in derived fields are reported at
the manifest field they came from (``origins``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from activities.platforms.deployments import canary_match_labels
from activities.platforms.spec import image_tag
from workflows.rollouts.argo_fields import GATEWAY_API, PREFIX, ROLLOUT, check

API_VERSION: Final = "argoproj.io/v1alpha1"
SERVICE: Final = "deployflow.io/service"
ENVIRONMENT: Final = "deployflow.io/environment"
VERSION: Final = "deployflow.io/version"
CONTEXT: Final = "deployflow.io/context"
GATEWAY_API_PLUGIN: Final = "argoproj-labs/gatewayAPI"
JSON = dict[str, Any]


def is_argo_rollout(document: object) -> bool:
    return (
        isinstance(document, dict)
        and document.get("kind") == "Rollout"
        and document.get("apiVersion") == API_VERSION
    )


BESIDE: Final = frozenset(
    {"Service", "Ingress", "VirtualService", "DestinationRule", "Gateway", "HTTPRoute"}
)
"""Kinds Argo's examples put in one file with the Rollout: deployflow reads past them
(``kubectl apply`` creates them; ``beside_the_rollout`` lists them for lint)."""


def is_kubernetes_object(document: object) -> bool:
    """A Service, Ingress or route object (``apiVersion`` and ``kind`` of ``BESIDE``)."""
    if not isinstance(document, dict):
        return False
    kind = document.get("kind")
    return isinstance(kind, str) and kind in BESIDE and isinstance(document.get("apiVersion"), str)


def beside_the_rollout(documents: list[Any]) -> list[str]:
    """``Service storefront-live`` for each object deployflow reads past."""
    if not any(map(is_argo_rollout, documents)):
        return []
    return [
        f"{d['kind']} {(d.get('metadata') or {}).get('name', '?')}"
        if isinstance(d.get("metadata"), dict)
        else str(d["kind"])
        for d in documents
        if is_kubernetes_object(d)
    ]


def replica_count_notes(documents: list[Any]) -> list[str]:
    """What to tell about an Argo canary without ``trafficRouting`` whose pods carry only
    their selector's labels: a Service selecting them never reaches the canary's pods
    (their selector values are suffixed ``-canary``), so the weights would be pod counts
    no request follows."""
    notes = []
    for document in filter(is_argo_rollout, documents):
        spec = document.get("spec") if isinstance(document.get("spec"), dict) else {}
        canary = (spec.get("strategy") or {}).get("canary")
        template = spec.get("template")
        if not isinstance(canary, dict) or canary.get("trafficRouting") or not template:
            continue
        labels = ((template.get("metadata") or {}).get("labels")) or {}
        selected = ((spec.get("selector") or {}).get("matchLabels")) or {}
        if isinstance(labels, dict) and isinstance(selected, dict) and set(labels) <= set(selected):
            notes.append(
                "weights are replica counts: the Service in front must select a pod label "
                "both versions carry, and spec.template.metadata.labels has none beside the "
                f"selector's ({', '.join(sorted(selected))}, which the canary's pods carry "
                "suffixed -canary): add one (app.kubernetes.io/name, say) and select on it"
            )
    return notes


@dataclass
class Translation:
    """The deployflow/v1 body, where its derived fields came from, and what is wrong."""

    body: JSON = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def located(self, problem: str) -> str:
        """``problem`` with a derived field's path replaced by the manifest's own."""
        path, sep, message = problem.partition(": ")
        best = max(
            (k for k in self.origins if path == k or path.startswith((k + ".", k + "["))),
            key=len,
            default=None,
        )
        if best is None or not sep:
            return problem
        return f"{self.origins[best]}{path[len(best) :]}: {message}"


def translate(document: JSON) -> Translation:
    """The deployflow body of an Argo Rollout manifest; ``problems`` name manifest paths."""
    out = Translation(problems=check(document, ROLLOUT, ""))
    metadata = _mapping(out, document.get("metadata"), "metadata", required=True)
    spec = _mapping(out, document.get("spec"), "spec", required=True)
    annotations = _strings(out, metadata.get("annotations"), "metadata.annotations")
    labels = metadata.get("labels") or {}
    name, namespace = metadata.get("name"), metadata.get("namespace") or "default"
    if not isinstance(namespace, str):
        out.problems.append(f"metadata.namespace: must be a string, got {type(namespace).__name__}")
        namespace = "default"
    template = _mapping(out, spec.get("template"), "spec.template")
    workload = _mapping(out, spec.get("workloadRef"), "spec.workloadRef")
    if bool(template) == bool(workload):
        out.problems.append("spec: set exactly one of template or workloadRef")

    deployment: JSON = {"name": workload.get("name", name), "namespace": namespace}
    out.origins["spec.platform.kubernetes.deployment.name"] = (
        "spec.workloadRef.name" if workload else "metadata.name"
    )
    out.origins["spec.platform.kubernetes.deployment.namespace"] = "metadata.namespace"
    version = _derived(out, annotations, VERSION, "spec.version", None)
    if workload:
        _workload_ref(out, workload)
        if version is None:
            out.problems.append(
                f'metadata.annotations["{VERSION}"]: required with workloadRef (the referenced '
                "Deployment is the stable version; this says which version to roll out)"
            )
    elif template:
        container = _first_container(out, template)
        if container:
            # The whole template rolls out, every container as written; the first one's
            # image tag is the version, and says the stable Deployment's.
            deployment |= {"container": container.get("name"), "template": template}
            out.origins["spec.platform.kubernetes.deployment.container"] = (
                "spec.template.spec.containers[0].name"
            )
            out.origins["spec.platform.kubernetes.deployment.template"] = "spec.template"
            if version is None:
                version = _version_of(out, container.get("image"))
        _selector_matches(out, spec.get("selector"), template)
    context = _derived(out, annotations, CONTEXT, "spec.platform.kubernetes.deployment.context")
    if context is not None:
        deployment["context"] = context
    if "progressDeadlineSeconds" in spec:
        deployment["progressDeadlineSeconds"] = spec["progressDeadlineSeconds"]
        out.origins["spec.platform.kubernetes.deployment.progressDeadlineSeconds"] = (
            "spec.progressDeadlineSeconds"
        )

    service = _derived(out, annotations, SERVICE, "spec.service", name, "metadata.name")
    environment = labels.get(ENVIRONMENT) if isinstance(labels, dict) else None
    environment = _derived(out, annotations, ENVIRONMENT, "spec.environment", environment)
    if environment is None:
        environment = namespace
        out.origins["spec.environment"] = "metadata.namespace"
    kube = {"namespace": namespace} | ({"context": context} if context else {})
    strategy, router = _strategy(out, spec, kube, deployment["name"])
    out.body = {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "service": service,
            "environment": environment,
            "version": version,
            "router": router,
            "platform": {"kubernetes": {"deployment": deployment}},
            "strategy": strategy,
        },
    }
    return out


def stable_deployment(document: JSON) -> JSON:
    """The Deployment an Argo Rollout with a ``template`` stands for (``apps/v1``): what a
    team applies once so deployflow has a stable Deployment to start from."""
    metadata, spec = document.get("metadata") or {}, document.get("spec") or {}
    body = {
        key: spec[key]
        for key in ("replicas", "selector", "template", "minReadySeconds", "revisionHistoryLimit")
        if key in spec
    }
    if "progressDeadlineSeconds" in spec:
        body["progressDeadlineSeconds"] = spec["progressDeadlineSeconds"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {k: metadata[k] for k in ("name", "namespace", "labels") if k in metadata},
        "spec": body,
    }


# -- the strategy and the router it implies -----------------------------------------------


def _strategy(out: Translation, spec: JSON, kube: JSON, deployment: Any) -> tuple[JSON, JSON]:
    strategy = _mapping(out, spec.get("strategy"), "spec.strategy", required=True)
    canary = _mapping(out, strategy.get("canary"), "spec.strategy.canary")
    blue_green = _mapping(out, strategy.get("blueGreen"), "spec.strategy.blueGreen")
    if bool(canary) == bool(blue_green):
        out.problems.append("spec.strategy: set exactly one of canary or blueGreen")
        return {}, {}
    if blue_green:
        return {"blueGreen": _blue_green(blue_green)}, _service_router(out, spec, blue_green, kube)
    steps = canary.get("steps")
    body: JSON = {"steps": [{"setWeight": 100}] if steps is None else steps}
    if "analysis" in canary:
        body["analysis"] = canary["analysis"]
    count = {"replicas": spec["replicas"]} if "replicas" in spec else {}
    return {"canary": body}, _canary_router(out, canary, kube, deployment, count)


def _blue_green(blue_green: JSON) -> JSON:
    return {k: v for k, v in blue_green.items() if k not in ("activeService", "previewService")}


def _service_router(out: Translation, spec: JSON, blue_green: JSON, kube: JSON) -> JSON:
    selector = _mapping(out, spec.get("selector"), "spec.selector")
    stable = selector.get("matchLabels")
    if not isinstance(stable, dict) or not stable:
        out.problems.append(
            "spec.selector.matchLabels: required by blueGreen (Services select by it)"
        )
        return {}
    try:
        canary = canary_match_labels({"spec": {"selector": selector}})
    except ValueError as exc:
        out.problems.append(f"spec.selector: {exc}")
        return {}
    route = {"activeService": blue_green.get("activeService"), "stableSelector": stable}
    if blue_green.get("previewService") is not None:
        route["previewService"] = blue_green["previewService"]
    out.origins["spec.router.service"] = "spec.strategy.blueGreen"
    return {"service": {**kube, **route, "canarySelector": canary}}


def _canary_router(
    out: Translation, canary: JSON, kube: JSON, deployment: Any, replicas: JSON
) -> JSON:
    where = "spec.strategy.canary.trafficRouting"
    routing = _mapping(out, canary.get("trafficRouting"), where)
    kinds = [k for k in ("nginx", "istio", "plugins") if routing.get(k) is not None]
    if len(kinds) > 1:
        out.problems.append(f"{where}: {PREFIX}one traffic router per rollout, got {kinds}")
        return {}
    services = {
        k: canary[k] for k in ("stableService", "canaryService") if canary.get(k) is not None
    }
    if not kinds:
        # Argo's basic canary: a Service selecting both Deployments' pods, weights by count.
        out.origins["spec.router.replicas"] = "spec.strategy.canary"
        out.origins["spec.router.replicas.replicas"] = "spec.replicas"
        return {"replicas": {**kube, "deployment": deployment} | replicas}
    kind = kinds[0]
    router_where = f"{where}.{kind}"
    body = _mapping(out, routing[kind], router_where)
    needs_services = kind != "istio" or "destinationRule" not in body
    for key in ("stableService", "canaryService"):
        if needs_services and key not in services:
            out.problems.append(f"spec.strategy.canary.{key}: required by {router_where}")
    if not needs_services:
        services = {}
    if kind == "nginx":
        route = {"stableIngress": body.get("stableIngress")}
        if "annotationPrefix" in body:
            route["annotationPrefix"] = body["annotationPrefix"]
        return _routed(out, "ingressNginx", router_where, {**kube, **route, **services})
    if kind == "istio":
        route = _virtual_services(out, body, router_where)
        if "destinationRule" in body:
            route["destinationRule"] = body["destinationRule"]
        return _routed(out, "istio", router_where, {**kube, **route, **services})
    plugin = _gateway_plugin(out, body, router_where)
    where = f"{router_where}.{GATEWAY_API_PLUGIN}"
    return _routed(out, "gatewayAPI", where, {**kube, **plugin, **services})


def _routed(out: Translation, kind: str, where: str, route: JSON) -> JSON:
    out.origins[f"spec.router.{kind}"] = where
    for key in ("stableService", "canaryService"):
        out.origins[f"spec.router.{kind}.{key}"] = f"spec.strategy.canary.{key}"
    return {kind: route}


def _virtual_services(out: Translation, istio: JSON, where: str) -> JSON:
    """``{virtualService: ...}`` or ``{virtualServices: [...]}``, as the manifest has it."""
    chosen: JSON = {k: istio[k] for k in ("virtualService", "virtualServices") if k in istio}
    if len(chosen) != 1:
        out.problems.append(f"{where}: set exactly one of virtualService or virtualServices")
    return chosen


def _gateway_plugin(out: Translation, plugins: JSON, where: str) -> JSON:
    for key in plugins:
        if key != GATEWAY_API_PLUGIN:
            out.problems.append(
                f"{where}[{json.dumps(str(key))}]: {PREFIX}of the plugins only {GATEWAY_API_PLUGIN}"
            )
    where = f"{where}[{json.dumps(GATEWAY_API_PLUGIN)}]"
    plugin = _mapping(out, plugins.get(GATEWAY_API_PLUGIN), where)
    out.problems += check(plugin, GATEWAY_API, where)
    route: JSON = {"httpRoute": plugin.get("httpRoute")}
    many = plugin.get("httpRoutes")
    if ("httpRoute" in plugin) == (many is not None):
        out.problems.append(f"{where}: set exactly one of httpRoute or httpRoutes")
    elif isinstance(many, list) and len(many) == 1 and isinstance(many[0], dict):
        route["httpRoute"] = many[0].get("name")
        out.origins["spec.router.gatewayAPI.httpRoute"] = f"{where}.httpRoutes[0].name"
    elif many is not None:
        out.problems.append(f"{where}.httpRoutes: {PREFIX}one HTTPRoute per rollout")
    if "namespace" in plugin:
        route["namespace"] = plugin["namespace"]
    return route


# -- small readers ---------------------------------------------------------------------


def _workload_ref(out: Translation, workload: JSON) -> None:
    if (workload.get("apiVersion"), workload.get("kind")) != ("apps/v1", "Deployment"):
        out.problems.append("spec.workloadRef: must refer to an apps/v1 Deployment")
    if workload.get("scaleDown") not in (None, "never"):
        out.problems.append(
            f"spec.workloadRef.scaleDown: {PREFIX}the referenced Deployment stays the stable "
            "one and is never scaled down (never)"
        )


def _first_container(out: Translation, template: JSON) -> JSON:
    """The template's first container (its image tag is the version), once every container
    has a name and an image; ``{}`` and a problem naming the container otherwise."""
    pod = _mapping(out, template.get("spec"), "spec.template.spec", required=True)
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        out.problems.append("spec.template.spec.containers: at least one container is required")
        return {}
    for index, container in enumerate(containers):  # each rolls out, as written
        where = f"spec.template.spec.containers[{index}]"
        found = _mapping(out, container, where, required=True)
        if not found:
            return {}
        for key in ("name", "image"):
            if not isinstance(found.get(key), str) or not found.get(key):
                out.problems.append(f"{where}.{key}: required (a string)")
                return {}
    first: JSON = containers[0]
    return first


def _version_of(out: Translation, image: str | None) -> str | None:
    tag = image_tag(image) if image is not None else None
    if tag is None:
        out.problems.append(
            "spec.template.spec.containers[0].image: has no tag to take the version from; "
            f'tag it or set metadata.annotations["{VERSION}"]'
        )
    out.origins["spec.version"] = "spec.template.spec.containers[0].image"
    return tag


def _selector_matches(out: Translation, selector: Any, template: JSON) -> None:
    selector = _mapping(out, selector, "spec.selector", required=True)
    if selector.get("matchExpressions"):
        out.problems.append(f"spec.selector.matchExpressions: {PREFIX}matchLabels only")
    wanted = selector.get("matchLabels")
    pod_metadata = template.get("metadata")
    labels = pod_metadata.get("labels") if isinstance(pod_metadata, dict) else None
    if not isinstance(wanted, dict) or not wanted:
        out.problems.append("spec.selector.matchLabels: required")
    elif not isinstance(labels, dict) or any(labels.get(k) != v for k, v in wanted.items()):
        out.problems.append(
            "spec.selector: does not match spec.template.metadata.labels "
            "(the pods must carry every matchLabels label)"
        )


def _derived(
    out: Translation,
    annotations: dict[str, str],
    key: str,
    target: str,
    default: Any = None,
    default_origin: str | None = None,
) -> Any:
    """The annotation ``key`` if set (its origin recorded for ``target``), else ``default``."""
    if key in annotations:
        out.origins[target] = f'metadata.annotations["{key}"]'
        return annotations[key]
    if default_origin is not None:
        out.origins[target] = default_origin
    return default


def _mapping(out: Translation, value: Any, path: str, required: bool = False) -> JSON:
    """``value`` when it is a mapping; else a problem (if set or required) and ``{}``."""
    if isinstance(value, dict):
        return value
    if value is not None:
        out.problems.append(f"{path}: must be a mapping (key: value), got {type(value).__name__}")
    elif required:
        out.problems.append(f"{path}: required")
    return {}


def _strings(out: Translation, value: Any, path: str) -> dict[str, str]:
    mapping = _mapping(out, value, path)
    bad = [k for k, v in mapping.items() if not isinstance(k, str) or not isinstance(v, str)]
    for key in bad:
        out.problems.append(f"{path}[{json.dumps(str(key))}]: must be a string")
    return {k: v for k, v in mapping.items() if k not in bad}
