"""Kubernetes platform: the team's Deployment stays stable, deployflow owns its canary.

Every object travels as the API server's own JSON (``ApiClient.param_serialize`` and
``call_api`` of the official client, not its typed models, which drop fields they do not
know: a pod template is recorded and put back exactly). The bodies come from
:mod:`activities.platforms.deployments` (pure). Each call has ``_request_timeout``; writes
carry the ``resourceVersion`` they read, and a 409 (someone changed the object meanwhile)
is answered by reading again and re-applying the same intent, never by overwriting.

Waiting is ``kubectl rollout status``: a watch from the read's ``resourceVersion`` with a
bounded ``timeoutSeconds``, resumed by a fresh read when it ends or breaks off, reporting
each state through ``progress`` (the activity heartbeats with it). A Deployment whose
``Progressing`` condition says ``ProgressDeadlineExceeded`` fails non-retryably, naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import structlog

from activities import errors
from activities.errors import failure
from activities.kubeconfig import REQUEST_TIMEOUT
from activities.kubernetes import api as kube_api
from activities.kubernetes.api import ApiStatus
from activities.log_fields import ms_since
from activities.platforms import deployments as build
from activities.platforms.models import StableRecord, Workload, WorkloadState
from activities.platforms.spec import DeploymentTarget

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = structlog.get_logger()

JSON = dict[str, Any]
WATCH_SECONDS: Final = 5
"""``timeoutSeconds`` of one watch: how long a cancel may wait for a blocked read."""
CONFLICT_ATTEMPTS: Final = 5
"""Read-modify-write rounds on 409 before the activity fails (retryably)."""
DEFAULT_DEADLINE: Final = 600
"""A Deployment's ``progressDeadlineSeconds`` when it has none (the API default)."""


class KubernetesDeployments:
    """The stable and canary Deployments of one ``platform.kubernetes.deployment``."""

    def __init__(
        self,
        target: DeploymentTarget,
        api: ApiClient,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.target = target
        self.api = api
        self.progress = progress or (lambda line: None)

    # -- what the activities do --------------------------------------------------------

    def record(self) -> StableRecord:
        """The stable Deployment's exact pod template, replicas and strategy."""
        stable = self._required(self.target.name)
        spec = stable["spec"]
        template = spec["template"]
        for name in self.target.images or {}:
            self._container(template, name, f"images.{name}")
        try:
            build.canary_match_labels(stable)
        except ValueError as e:
            raise failure(
                errors.INVALID_SPEC,
                f"spec.platform.kubernetes.deployment.name: {self._name()}: {e}",
            ) from None
        container = self._container(template, self.target.version_container, "container")
        image = str(container.get("image", ""))
        return StableRecord(
            deployment=self.target.describe(),
            uid=stable["metadata"]["uid"],
            template=template,
            replicas=spec.get("replicas", 1),
            strategy=spec.get("strategy") or {},
            progress_deadline_seconds=spec.get("progressDeadlineSeconds", DEFAULT_DEADLINE),
            container=str(container["name"]),
            image=image,
            version=build.template_version(template, image),
        )

    def _container(self, template: JSON, name: str | None, field: str) -> JSON:
        """The stable template's container ``name``; with a whole ``template`` to roll out,
        one it lacks (the manifest added or renamed it) falls back to the first."""
        try:
            return build.container_named(template, name)
        except ValueError as e:
            problem = e
        if self.target.template is not None and name is not None and field == "container":
            return self._container(template, None, field)
        raise failure(
            errors.INVALID_SPEC,
            f"spec.platform.kubernetes.deployment.{field}: {self._name()}: {problem}",
        )

    def apply_canary(
        self, record: StableRecord, version: str, replicas: int, rollout: str
    ) -> WorkloadState:
        """Create or update the canary from ``record``'s template running ``version``."""
        started = time.monotonic()
        name = self.target.canary_name
        stable = self._required(self.target.name)
        wanted = build.canary_deployment(
            stable,
            build.version_template(self.target, record, version),  # names checked by record
            version=version,
            replicas=replicas,
            rollout=rollout,
            progress_deadline_seconds=self.target.progress_deadline_seconds,
        )
        changed = False
        for _ in range(CONFLICT_ATTEMPTS):
            current = self._get(name)
            try:
                if current is None:
                    self._request("POST", self._path(), body=wanted, what=f"create {name}")
                    changed = True
                    break
                if not build.owned_by_deployflow(current, self.target.name):
                    raise failure(
                        errors.KUBERNETES_OBJECT_FOREIGN,
                        f"deployment {self.target.describe(name)} exists and is not "
                        f"deployflow's canary of {self.target.name} (no labels "
                        f"{build.MANAGED_BY}=deployflow, {build.STABLE_OF}={self.target.name}): "
                        "rename or delete it",
                    )
                if not build.canary_drift(current, wanted):
                    break
                body = {**current, "spec": {**current["spec"], **wanted["spec"]}}
                body["metadata"] = _marked(current["metadata"], wanted["metadata"])
                self._request("PUT", self._path(name), body=body, what=f"update {name}")
                changed = True
                break
            except ApiStatus as e:
                if e.status != 409:  # AlreadyExists (a retry's create landed) or a stale read
                    raise self._failure(e, f"apply {name}") from None
        else:
            raise self._conflicts(name)
        return self._state(self.wait(name), changed, started)

    def set_stable(
        self,
        template: JSON,
        strategy: JSON | None,
        deadline: int | None,
        rollout: str,
        uid: str | None = None,
    ) -> WorkloadState:
        """Set the stable Deployment's pod template exactly, then wait for the rollout.
        With ``uid``: only on the Deployment of that uid (``KubernetesObjectReplaced``)."""
        started = time.monotonic()
        name = self.target.name
        changed = False
        for _ in range(CONFLICT_ATTEMPTS):
            current = self._required(name)
            self._same_object(current, uid)
            body = build.stable_changes(current, template, strategy, deadline)
            if body is None:
                break
            body["metadata"]["annotations"] = {
                **(body["metadata"].get("annotations") or {}),
                build.ROLLOUT: rollout,
            }
            try:
                self._request("PUT", self._path(name), body=body, what=f"update {name}")
            except ApiStatus as e:
                if e.status == 409:
                    continue
                raise self._failure(e, f"update {name}") from None
            changed = True
            break
        else:
            raise self._conflicts(name)
        return self._state(self.wait(name, uid=uid), changed, started)

    def _same_object(self, deployment: JSON, uid: str | None) -> None:
        """``KubernetesObjectReplaced`` when ``deployment`` is not the one of ``uid``."""
        found = deployment["metadata"].get("uid")
        if uid is not None and found != uid:
            raise failure(
                errors.KUBERNETES_OBJECT_REPLACED,
                f"deployment {self.target.describe(deployment['metadata']['name'])} is not the "
                f"one its pod template was recorded from (uid {found}, recorded {uid}): it was "
                "deleted and created again since, and deployflow does not overwrite it; roll "
                "the version out with `deployflow rollout start` instead",
            )

    def scale(self, workload: Workload, replicas: int) -> WorkloadState:
        """``kubectl scale`` through ``/scale``; a canary that does not exist is at 0."""
        started = time.monotonic()
        name = self._workload(workload)
        current = self._get(name) if workload == "canary" else self._required(name)
        if current is None and replicas == 0:
            return WorkloadState(
                deployment=self.target.describe(name),
                changed=False,
                replicas=0,
                updated_replicas=0,
                available_replicas=0,
                message="no canary deployment",
                duration_ms=ms_since(started),
            )
        if current is None:
            raise self._missing(name)
        changed = current["spec"].get("replicas", 1) != replicas
        if changed:
            patch = build.scale_patch(replicas)
            self._patch(f"{self._path(name)}/scale", patch, f"scale {name} to {replicas}")
            current = self._required(name)
        return self._state(current, changed, started)

    def pause(self, workload: Workload, paused: bool) -> WorkloadState:
        """``kubectl rollout pause`` (or ``resume``): ``spec.paused``; no wait."""
        started = time.monotonic()
        name = self._workload(workload)
        current = self._required(name)
        changed = bool(current["spec"].get("paused", False)) != paused
        if changed:
            what = f"{'pause' if paused else 'resume'} {name}"
            current = self._patch(self._path(name), build.pause_patch(paused), what)
        return self._state(current, changed, started)

    def restart(self, workload: Workload, at: str) -> WorkloadState:
        """``kubectl rollout restart`` with the workflow's timestamp, then wait."""
        started = time.monotonic()
        name = self._workload(workload)
        current = self._required(name)
        annotations = current["spec"]["template"].get("metadata", {}).get("annotations") or {}
        changed = annotations.get(build.RESTARTED_AT) != at
        if changed:
            self._patch(self._path(name), build.restart_patch(at), f"restart {name}")
        return self._state(self.wait(name), changed, started)

    def read(self, workload: Workload) -> JSON | None:
        """The Deployment as the API server has it, or None when there is none."""
        return self._get(self._workload(workload))

    def wait(self, name: str, budget_s: float | None = None, uid: str | None = None) -> JSON:
        """Until ``name`` has rolled out (the Deployment's own deadline, plus a minute, at
        most); returns it. Raises ``KubernetesRolloutFailed`` on ProgressDeadlineExceeded,
        and ``KubernetesObjectReplaced`` when, with ``uid``, another Deployment took the
        name meanwhile (its rollout is not ours to judge)."""
        deployment = self._required(name)
        self._same_object(deployment, uid)
        if budget_s is None:
            budget_s = deployment["spec"].get("progressDeadlineSeconds", DEFAULT_DEADLINE) + 60
        ends = time.monotonic() + budget_s
        while True:
            verdict = self._judge(deployment)
            if verdict is not None:
                return verdict
            left = ends - time.monotonic()
            if left <= 0:
                progress = build.rollout_progress(deployment)
                raise failure(
                    errors.KUBERNETES_ROLLOUT_FAILED,
                    f"deployment {self.target.describe(name)} did not roll out in "
                    f"{budget_s:g}s: {progress.message}",
                )
            found = self._watch(name, deployment, min(WATCH_SECONDS, max(1, int(left))), uid)
            # A watch that ended (timeoutSeconds, a disconnect, 410 Gone) resumes from a
            # fresh read: nothing between the two is missed, whatever the watch saw.
            deployment = found if found is not None else self._required(name)
            self._same_object(deployment, uid)

    # -- machinery ---------------------------------------------------------------------

    def _judge(self, deployment: JSON) -> JSON | None:
        progress = build.rollout_progress(deployment)
        if progress.failed:
            raise failure(
                errors.KUBERNETES_ROLLOUT_FAILED,
                f"{self.target.context or 'default'}/{self.target.namespace}: {progress.message}",
            )
        self.progress(progress.message)
        return deployment if progress.done else None

    def _watch(
        self, name: str, deployment: JSON, seconds: int, uid: str | None = None
    ) -> JSON | None:
        """Watch ``name`` from ``deployment``'s resourceVersion for ``seconds``; the first
        version that is done, or None when the watch ended first (or it was deleted)."""
        from kubernetes import client, watch
        from urllib3.exceptions import HTTPError

        apps = client.AppsV1Api(self.api)
        stream = watch.Watch()
        try:
            for event in stream.stream(
                apps.list_namespaced_deployment,
                self.target.namespace,
                field_selector=f"metadata.name={name}",
                resource_version=deployment["metadata"]["resourceVersion"],
                timeout_seconds=seconds,
                _request_timeout=(REQUEST_TIMEOUT[0], seconds + 5),
                deserialize=False,
            ):
                if event.get("type") == "DELETED" and uid is not None:
                    stream.stop()  # a fresh read says what took its place, if anything
                    return None
                if event.get("type") not in ("ADDED", "MODIFIED"):
                    continue
                self._same_object(event["object"], uid)
                if self._judge(event["object"]) is not None:
                    stream.stop()
                    return dict(event["object"])
        except client.ApiException as e:
            log.info("kubernetes_watch_ended", deployment=name, status=e.status)
        except HTTPError as e:
            log.info("kubernetes_watch_broke", deployment=name, error=type(e).__name__)
        return None

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JSON:
        from urllib3.exceptions import HTTPError

        try:
            return kube_api.request(self.api, method, path, body, content_type)
        except HTTPError as e:
            raise failure(
                errors.KUBERNETES_REQUEST_FAILED,
                f"{what} on {self.target.context or 'the default cluster'}: {e}",
            ) from None

    def _patch(self, path: str, patch: build.Patch, what: str) -> JSON:
        try:
            return self._request(
                "PATCH", path, body=patch.body, content_type=patch.content_type, what=what
            )
        except ApiStatus as e:
            raise self._failure(e, what) from None

    def _get(self, name: str) -> JSON | None:
        try:
            return self._request("GET", self._path(name), what=f"read {name}")
        except ApiStatus as e:
            if e.status == 404:
                return None
            raise self._failure(e, f"read {name}") from None

    def _required(self, name: str) -> JSON:
        found = self._get(name)
        if found is None:
            raise self._missing(name)
        return found

    def _failure(self, e: ApiStatus, what: str) -> Exception:
        where = f"{what} ({self.target.describe()})"
        if e.status in (401, 403):
            return failure(errors.KUBERNETES_FORBIDDEN, f"{where}: {e.status} {e.message}")
        if e.status == 404:
            return failure(errors.KUBERNETES_OBJECT_MISSING, f"{where}: {e.message}")
        if e.status in (400, 422):
            return failure(errors.INVALID_SPEC, f"{where}: the API server refused it: {e.message}")
        return failure(errors.KUBERNETES_REQUEST_FAILED, f"{where}: {e.status} {e.message}")

    def _missing(self, name: str) -> Exception:
        return failure(
            errors.KUBERNETES_OBJECT_MISSING,
            f"deployment {self.target.describe(name)} not found",
        )

    def _conflicts(self, name: str) -> Exception:
        return failure(
            errors.KUBERNETES_REQUEST_FAILED,
            f"deployment {self.target.describe(name)} changed under every one of "
            f"{CONFLICT_ATTEMPTS} updates (409 Conflict); retrying",
        )

    def _state(self, deployment: JSON, changed: bool, started: float) -> WorkloadState:
        status = deployment.get("status") or {}
        return WorkloadState(
            deployment=self.target.describe(deployment["metadata"]["name"]),
            changed=changed,
            replicas=deployment["spec"].get("replicas", 1),
            updated_replicas=status.get("updatedReplicas", 0),
            available_replicas=status.get("availableReplicas", 0),
            message=build.rollout_progress(deployment).message,
            duration_ms=ms_since(started),
        )

    def _workload(self, workload: Workload) -> str:
        return self.target.name if workload == "stable" else self.target.canary_name

    def _path(self, name: str | None = None) -> str:
        base = f"/apis/apps/v1/namespaces/{self.target.namespace}/deployments"
        return base if name is None else f"{base}/{name}"

    def _name(self) -> str:
        return f"deployment {self.target.describe()}"


def _marked(current: JSON, wanted: JSON) -> JSON:
    """``current`` metadata with deployflow's labels and annotations set (others kept)."""
    return {
        **current,
        "labels": {**(current.get("labels") or {}), **wanted["labels"]},
        "annotations": {**(current.get("annotations") or {}), **wanted["annotations"]},
        "ownerReferences": current.get("ownerReferences") or wanted["ownerReferences"],
    }
