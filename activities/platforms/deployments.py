"""Pure: the Deployment bodies and patches deployflow sends, and how a rollout is judged.

No I/O and no ``kubernetes`` import: objects are the JSON the API server speaks (camelCase
dicts), so each builder is unit-tested on exact bodies and content types, and workflow code
may build a pod template (the one promotion moves the stable Deployment to).

The ownership model (docs/kubernetes.md): the team's Deployment is the stable one;
deployflow owns ``<name>-canary`` beside it, labelled ``app.kubernetes.io/managed-by:
deployflow`` and ``deployflow.io/role: canary``, whose pods carry the stable pods' labels
with each stable selector value suffixed ``-canary`` (a Service selecting the stable pods
never reaches a canary pod, as Flagger's ``-primary``/``-canary`` pair).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Final

from activities.platforms.models import StableRecord
from activities.platforms.spec import CANARY_SUFFIX, DeploymentTarget, image_tag

MANAGED_BY: Final = "app.kubernetes.io/managed-by"
ROLE: Final = "deployflow.io/role"
STABLE_OF: Final = "deployflow.io/stable"
"""On the canary Deployment: the name of the stable Deployment it was built from."""
VERSION: Final = "deployflow.io/version"
"""Annotation on a pod template deployflow wrote: the version it runs."""
ROLLOUT: Final = "deployflow.io/rollout"
"""Annotation on a Deployment deployflow changed: the rollout (workflow id) that did."""
RESTARTED_AT: Final = "kubectl.kubernetes.io/restartedAt"
"""The annotation ``kubectl rollout restart`` sets on the pod template."""

STRATEGIC_MERGE: Final = "application/strategic-merge-patch+json"
MERGE: Final = "application/merge-patch+json"
LABEL_VALUE_MAX: Final = 63

JSON = dict[str, Any]


@dataclass(frozen=True)
class Patch:
    """A PATCH body and the content type that says how the server merges it."""

    body: JSON
    content_type: str


def image_patch(container: str, image: str) -> Patch:
    """``kubectl set image``: containers merge by ``name``, so the others (sidecars) stay."""
    containers = [{"name": container, "image": image}]
    return Patch({"spec": {"template": {"spec": {"containers": containers}}}}, STRATEGIC_MERGE)


def scale_patch(replicas: int) -> Patch:
    """``kubectl scale``: the ``/scale`` subresource's ``spec.replicas``."""
    return Patch({"spec": {"replicas": replicas}}, MERGE)


def pause_patch(paused: bool) -> Patch:
    """``kubectl rollout pause`` / ``resume``: the controller holds the update where it is."""
    return Patch({"spec": {"paused": paused}}, MERGE)


def restart_patch(at: str) -> Patch:
    """``kubectl rollout restart``: a new pod template annotation, so new pods roll out.
    ``at`` comes from the workflow (its own clock), so a retried restart is a no-op."""
    annotations = {RESTARTED_AT: at}
    return Patch(
        {"spec": {"template": {"metadata": {"annotations": annotations}}}}, STRATEGIC_MERGE
    )


def container_named(template: JSON, wanted: str | None) -> JSON:
    """The pod template's container called ``wanted`` (None: the first); ``ValueError``."""
    containers: list[JSON] = template.get("spec", {}).get("containers") or []
    if not containers:
        raise ValueError("the pod template has no containers")
    if wanted is None:
        return containers[0]
    for container in containers:
        if container.get("name") == wanted:
            return container
    names = ", ".join(str(c.get("name")) for c in containers)
    raise ValueError(f"the pod template has no container {wanted!r} (it has {names})")


def with_image(template: JSON, container: str, image: str, version: str) -> JSON:
    """A copy of ``template`` running ``image`` in ``container``, annotated with ``version``;
    everything else (sidecars, probes, other annotations) as it was."""
    return with_images(template, {container: image}, version)


def with_images(template: JSON, images: dict[str, str], version: str) -> JSON:
    """A copy of ``template`` with each named container on its new image (``ValueError``
    for a name it lacks), annotated with ``version``; every other container as it was."""
    changed = copy.deepcopy(template)
    for container, image in images.items():
        container_named(changed, container)["image"] = image
    return annotated(changed, version)


def annotated(template: JSON, version: str) -> JSON:
    """A copy of ``template`` with the ``deployflow.io/version`` annotation."""
    changed = copy.deepcopy(template)
    metadata = changed.setdefault("metadata", {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), VERSION: version}
    return changed


def version_template(target: DeploymentTarget, record: StableRecord, version: str) -> JSON:
    """The pod template a rollout of ``version`` runs, on the canary and, once promoted,
    on the stable Deployment: the spec's ``template`` as written (every container: an Argo
    Rollout's), else the recorded one with the new images, annotated with ``version``."""
    if target.template is not None:
        return annotated(target.template, version)
    images = target.images_for(version, record.container, record.image)
    return with_images(record.template, images, version)


def template_version(template: JSON, image: str) -> str | None:
    """The version a pod template runs: its ``deployflow.io/version`` annotation (what
    deployflow wrote; also right when every version shares one image), else the image's
    tag."""
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    written = annotations.get(VERSION)
    return str(written) if written else image_tag(image)


def canary_match_labels(stable: JSON) -> dict[str, str]:
    """The canary's selector: the stable selector's labels, each value suffixed
    ``-canary``, plus ``deployflow.io/role: canary``; ``ValueError`` when that cannot be
    told apart from the stable pods (``matchExpressions``, a value too long)."""
    selector: JSON = stable.get("spec", {}).get("selector") or {}
    if selector.get("matchExpressions"):
        raise ValueError("its selector uses matchExpressions; deployflow needs matchLabels only")
    labels: dict[str, str] = selector.get("matchLabels") or {}
    if not labels:
        raise ValueError("its selector has no matchLabels")
    canary = {}
    for key, value in labels.items():
        suffixed = value + CANARY_SUFFIX
        if len(suffixed) > LABEL_VALUE_MAX:
            raise ValueError(
                f"selector label {key}={value!r} is too long to suffix {CANARY_SUFFIX}"
            )
        canary[key] = suffixed
    return {**canary, ROLE: "canary"}


def canary_deployment(
    stable: JSON,
    template: JSON,
    *,
    version: str,
    replicas: int,
    rollout: str,
    progress_deadline_seconds: int | None,
) -> JSON:
    """The whole canary Deployment: ``template`` (``version_template``: what ``version``
    runs) with the canary's labels, and owner marks; the stable Deployment as its owner, so
    deleting the team's Deployment garbage-collects it."""
    metadata: JSON = stable["metadata"]
    name = metadata["name"] + CANARY_SUFFIX
    match = canary_match_labels(stable)
    pods = copy.deepcopy(template)
    pod_metadata = pods.setdefault("metadata", {})
    pod_metadata["labels"] = {**(pod_metadata.get("labels") or {}), **match}
    spec: JSON = {
        "replicas": replicas,
        "selector": {"matchLabels": match},
        "template": pods,
        "strategy": copy.deepcopy(stable.get("spec", {}).get("strategy") or {}),
    }
    if progress_deadline_seconds is not None:
        spec["progressDeadlineSeconds"] = progress_deadline_seconds
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": metadata.get("namespace", "default"),
            "labels": {MANAGED_BY: "deployflow", ROLE: "canary", STABLE_OF: metadata["name"]},
            "annotations": {ROLLOUT: rollout, VERSION: version},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": spec,
    }


def owned_by_deployflow(deployment: JSON, stable_name: str) -> bool:
    """Whether ``deployment`` is the canary deployflow made for ``stable_name``."""
    labels = deployment.get("metadata", {}).get("labels") or {}
    return labels.get(MANAGED_BY) == "deployflow" and labels.get(STABLE_OF) == stable_name


def canary_drift(current: JSON, wanted: JSON) -> bool:
    """Whether the live canary differs from ``wanted`` in what deployflow sets."""
    mine = ("replicas", "selector", "template", "strategy", "progressDeadlineSeconds")
    live, spec = current.get("spec", {}), wanted["spec"]
    labels = current.get("metadata", {}).get("labels") or {}
    return any(spec.get(k, live.get(k)) != live.get(k) for k in mine) or any(
        labels.get(k) != v for k, v in wanted["metadata"]["labels"].items()
    )


def stable_changes(
    current: JSON, template: JSON, strategy: JSON | None, deadline: int | None
) -> JSON | None:
    """``current`` with the pod template (and strategy, progress deadline) set exactly as
    given — the body of a PUT that keeps its ``resourceVersion`` — or None when it already
    matches (a retry after the PUT landed)."""
    spec = current.get("spec", {})
    wanted: JSON = {"template": template}
    if strategy is not None:
        wanted["strategy"] = strategy
    if deadline is not None:
        wanted["progressDeadlineSeconds"] = deadline
    if all(spec.get(k) == v for k, v in wanted.items()):
        return None
    changed = copy.deepcopy(current)
    changed["spec"].update(copy.deepcopy(wanted))
    return changed


@dataclass(frozen=True)
class Progress:
    """A Deployment's rollout as ``kubectl rollout status`` judges it."""

    done: bool
    failed: bool
    message: str


def rollout_progress(deployment: JSON) -> Progress:
    """kubectl's DeploymentStatusViewer, on the JSON: the spec change observed, no
    ProgressDeadlineExceeded, every replica updated, no old replica left, all available."""
    name = deployment.get("metadata", {}).get("name", "?")
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    generation = deployment.get("metadata", {}).get("generation", 0)
    if generation > status.get("observedGeneration", 0):
        return Progress(False, False, "waiting for the deployment spec update to be observed")
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            why = condition.get("message") or "no progress"
            return Progress(
                False, True, f"deployment {name!r} exceeded its progress deadline: {why}"
            )
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    replicas, available = status.get("replicas", 0), status.get("availableReplicas", 0)
    if updated < wanted:
        return Progress(False, False, f"{updated} out of {wanted} new replicas have been updated")
    if replicas > updated:
        return Progress(False, False, f"{replicas - updated} old replicas are pending termination")
    if available < updated:
        return Progress(False, False, f"{available} of {updated} updated replicas are available")
    return Progress(True, False, f"deployment {name!r} successfully rolled out")
