"""Every field of an Argo Rollout (``argoproj.io/v1alpha1``) and what deployflow does with it.

An explicit allow-list, transcribed from Argo Rollouts' ``pkg/apis/rollouts/v1alpha1/
types.go``: a field is translated (``Fields``/``Each``/``TAKEN``), validated by deployflow's
own models as it stands (``AS_IS``: the analysis references), accepted with no effect
(``NoEffect``, said in docs/kubernetes.md), or refused (``Refused``: Argo has it,
deployflow does not). A field in none of these is not Argo's at all. ``check`` walks a
manifest against it, so nothing in a pasted manifest is silently dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PREFIX = "not supported by deployflow: "
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # as workflows/core/spec.py spells paths


@dataclass(frozen=True)
class Fields:
    """A mapping whose keys must be among ``fields``."""

    fields: dict[str, Rule]


@dataclass(frozen=True)
class Each:
    """A list whose items follow ``item``."""

    item: Rule


@dataclass(frozen=True)
class Taken:
    """A value the translation reads (and checks) as a whole."""


@dataclass(frozen=True)
class NoEffect:
    """Accepted; it changes nothing deployflow does (``why`` says so in the docs)."""

    why: str


@dataclass(frozen=True)
class Refused:
    """Argo has it, deployflow does not: refused unless the value is what deployflow does
    anyway (``harmless``)."""

    why: str
    harmless: Callable[[Any], bool] = field(default=lambda _value: False)


Rule = Fields | Each | Taken | NoEffect | Refused
TAKEN = Taken()
AS_IS = Taken()  # passed to deployflow's analysis models, which name their own problems


def _is(*values: Any) -> Callable[[Any], bool]:
    return lambda value: value in values


_NOT_YET = "no such step in deployflow's canary yet"
_TRAFFIC = "deployflow routes with ingress-nginx, Istio, Gateway API or a Service selector"
_ANALYSIS = Fields(
    {
        "templates": AS_IS,
        "args": AS_IS,
        "dryRun": AS_IS,
        "measurementRetention": AS_IS,
        "analysisRunMetadata": AS_IS,
    }
)
_BACKGROUND = Fields({**_ANALYSIS.fields, "startingStep": AS_IS})
_METADATA = Refused(
    "labels and annotations per ReplicaSet role; deployflow's canary pods "
    "carry the stable pods' labels, their values suffixed -canary"
)
_SCALE_DOWN = "deployflow scales the old pods down as soon as traffic has left them"

GATEWAY_API = Fields(
    {
        "httpRoute": TAKEN,
        "httpRoutes": Each(
            Fields(
                {
                    "name": TAKEN,
                    "useHeaderRoutes": Refused(
                        "header routes always go on the HTTPRoute", _is(True)
                    ),
                }
            )
        ),
        "namespace": TAKEN,
        **{
            name: Refused("the gatewayAPI plugin's httpRoute(s) and namespace only")
            for name in (
                *(f"{kind}Route{tail}" for kind in ("grpc", "tcp", "tls") for tail in ("", "s")),
                *(f"{kind}RouteSelector" for kind in ("http", "grpc", "tcp", "tls")),
                "inProgressLabelKey",
                "inProgressLabelValue",
            )
        },
        "disableInProgressLabel": NoEffect("deployflow labels no route as in progress"),
    }
)
"""The ``argoproj-labs/gatewayAPI`` plugin's configuration (``GatewayAPITrafficRouting`` of
its ``pkg/plugin/types.go``)."""

VIRTUAL_SERVICE = Fields(
    {
        "name": TAKEN,
        "routes": TAKEN,
        "tlsRoutes": Refused("only http routes are weighted"),
        "tcpRoutes": Refused("only http routes are weighted"),
    }
)

CANARY = Fields(
    {
        "canaryService": TAKEN,
        "stableService": TAKEN,
        "steps": Each(
            Fields(
                {
                    "setWeight": AS_IS,
                    "pause": AS_IS,
                    "analysis": _ANALYSIS,
                    "experiment": Refused("experiments (a ReplicaSet per variant) are not run"),
                    "setCanaryScale": Refused(
                        _NOT_YET + "; the canary Deployment runs canaryReplicas pods"
                    ),
                    "setHeaderRoute": AS_IS,
                    "setMirrorRoute": Refused("traffic mirroring is not done"),
                    "plugin": Refused("step plugins are not run"),
                }
            )
        ),
        "trafficRouting": Fields(
            {
                "nginx": Fields(
                    {
                        "stableIngress": TAKEN,
                        "annotationPrefix": TAKEN,
                        "stableIngresses": Refused("one stableIngress per rollout"),
                        "additionalIngressAnnotations": Refused(
                            "the canary Ingress carries only the canary annotations"
                        ),
                        "canaryIngressAnnotations": Refused(
                            "the canary Ingress carries only the canary annotations"
                        ),
                    }
                ),
                "istio": Fields(
                    {
                        "virtualService": VIRTUAL_SERVICE,
                        "virtualServices": Each(VIRTUAL_SERVICE),
                        "destinationRule": Fields(
                            {
                                "name": TAKEN,
                                "canarySubsetName": TAKEN,
                                "stableSubsetName": TAKEN,
                                "additionalSubsetNames": Refused("two subsets: stable, canary"),
                            }
                        ),
                    }
                ),
                "plugins": TAKEN,
                "managedRoutes": NoEffect(
                    "the routes setHeaderRoute makes are recorded on the route object itself"
                ),
                "maxTrafficWeight": Refused("weights are percent (0..100)", _is(100)),
                **{
                    name: Refused(_TRAFFIC)
                    for name in ("alb", "smi", "ambassador", "appMesh", "traefik", "apisix")
                },
            }
        ),
        "analysis": _BACKGROUND,
        "maxSurge": Refused(
            "the canary Deployment rolls out with the stable Deployment's own strategy"
        ),
        "maxUnavailable": Refused(
            "the canary Deployment rolls out with the stable Deployment's own strategy"
        ),
        "antiAffinity": Refused("the pod template's own affinity applies"),
        "canaryMetadata": _METADATA,
        "stableMetadata": _METADATA,
        "scaleDownDelaySeconds": Refused(_SCALE_DOWN, _is(0)),
        "scaleDownDelayRevisionLimit": Refused(_SCALE_DOWN),
        "abortScaleDownDelaySeconds": Refused(_SCALE_DOWN, _is(0)),
        "dynamicStableScale": Refused(
            "the stable Deployment keeps its replicas while the canary runs", _is(False)
        ),
        "pingPong": Refused("the team's Deployment is always the stable one (no ping-pong)"),
        "minPodsPerReplicaSet": Refused("the canary runs canaryReplicas pods"),
        "replicaProgressThreshold": Refused("a rollout waits for every canary pod"),
    }
)

BLUE_GREEN = Fields(
    {
        "activeService": TAKEN,
        "previewService": TAKEN,
        "autoPromotionEnabled": AS_IS,
        "autoPromotionSeconds": AS_IS,
        "prePromotionAnalysis": _ANALYSIS,
        "postPromotionAnalysis": _ANALYSIS,
        "scaleDownDelaySeconds": AS_IS,
        "abortScaleDownDelaySeconds": AS_IS,
        "previewReplicaCount": Refused("the preview runs as many pods as the active side"),
        "maxUnavailable": Refused("the preview Deployment rolls out with its own strategy"),
        "scaleDownDelayRevisionLimit": Refused(_SCALE_DOWN),
        "antiAffinity": Refused("the pod template's own affinity applies"),
        "previewMetadata": _METADATA,
        "activeMetadata": _METADATA,
    }
)

ROLLOUT = Fields(
    {
        "apiVersion": TAKEN,
        "kind": TAKEN,
        "metadata": Fields(
            {
                "name": TAKEN,
                "namespace": TAKEN,
                "labels": TAKEN,
                "annotations": TAKEN,
                **{
                    name: NoEffect("set by the API server, not by a manifest")
                    for name in (
                        "uid",
                        "resourceVersion",
                        "generation",
                        "creationTimestamp",
                        "managedFields",
                        "selfLink",
                    )
                },
                "generateName": Refused("a rollout needs a fixed name"),
                "finalizers": Refused("a Rollout is not a Kubernetes object in deployflow"),
                "ownerReferences": Refused("a Rollout is not a Kubernetes object in deployflow"),
            }
        ),
        "spec": Fields(
            {
                "replicas": TAKEN,
                "selector": TAKEN,
                "template": TAKEN,
                "workloadRef": Fields(
                    {"apiVersion": TAKEN, "kind": TAKEN, "name": TAKEN, "scaleDown": TAKEN}
                ),
                "minReadySeconds": TAKEN,
                "revisionHistoryLimit": TAKEN,
                "progressDeadlineSeconds": TAKEN,
                "progressDeadlineAbort": Refused(
                    "a missed progress deadline always rolls back", _is(True)
                ),
                "strategy": Fields({"canary": CANARY, "blueGreen": BLUE_GREEN}),
                "analysis": NoEffect(
                    "AnalysisRun history limits: deployflow's AnalysisRuns live in the "
                    "workflow's history, not in Kubernetes"
                ),
                "paused": Refused("a rollout starts when it is started", _is(False)),
                "restartAt": Refused("use deployflow's restart (incident and monitor steps)"),
                "rollbackWindow": Refused("rollback is deployflow's emergency rollback"),
            }
        ),
        "status": NoEffect("written by Argo's controller, not part of a manifest"),
    }
)


def check(value: Any, rule: Rule, path: str) -> list[str]:
    """``path: why`` for every field of ``value`` the allow-list ``rule`` does not accept."""
    if isinstance(rule, Fields):
        if not isinstance(value, dict):
            return []  # the translation names the wrong type
        problems = []
        for key, item in value.items():
            if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
                where = f"{path}.{key}" if path else key
            else:
                where = f"{path}[{json.dumps(str(key))}]"
            sub = rule.fields.get(key) if isinstance(key, str) else None
            if sub is None:
                problems.append(f"{where}: not a field of an Argo Rollout (argoproj.io/v1alpha1)")
            else:
                problems += check(item, sub, where)
        return problems
    if isinstance(rule, Each):
        if not isinstance(value, list):
            return []
        return [p for i, item in enumerate(value) for p in check(item, rule.item, f"{path}[{i}]")]
    if isinstance(rule, Refused) and value is not None and not rule.harmless(value):
        return [f"{path}: {PREFIX}{rule.why}"]
    return []
