"""The Deployment controller simulation, stepped by the test, against what
kube-controller-manager guarantees (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/):
RollingUpdate never exceeds ``replicas + maxSurge`` pods nor drops below ``replicas -
maxUnavailable`` available; Recreate never runs old and new pods together; a rollout that
makes no progress for ``progressDeadlineSeconds`` gets ``ProgressDeadlineExceeded``.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.integration.test_kube_double import deployment

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@pytest.fixture
def rolled_out(kube, apps):
    """``web`` at web:1 with 4 replicas, fully rolled out."""
    apps.create_namespaced_deployment(kube.namespace, deployment(replicas=4))
    kube.controller.settle()
    return apps.read_namespaced_deployment("web", kube.namespace)


def replica_sets(kube, apps):
    found = apps.list_namespaced_replica_set(kube.namespace, label_selector="app=web").items
    return sorted(
        found, key=lambda rs: int(rs.metadata.annotations["deployment.kubernetes.io/revision"])
    )


def set_image(apps, kube, image):
    apps.patch_namespaced_deployment(
        "web",
        kube.namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
    )


def progressing(dep):
    return next(c for c in dep.status.conditions if c.type == "Progressing")


def test_a_new_deployment_gets_a_replica_set_pods_and_a_complete_status(kube, apps, rolled_out):
    status = rolled_out.status
    assert (
        status.replicas,
        status.updated_replicas,
        status.ready_replicas,
        status.available_replicas,
    ) == (4, 4, 4, 4)
    assert status.observed_generation == rolled_out.metadata.generation
    assert progressing(rolled_out).reason == "NewReplicaSetAvailable"
    (rs,) = replica_sets(kube, apps)
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{pod_hash}"
    assert rs.spec.selector.match_labels == {"app": "web", "pod-template-hash": pod_hash}
    assert rs.metadata.owner_references[0].uid == rolled_out.metadata.uid
    pods = (
        client.CoreV1Api(kube.api_client)
        .list_namespaced_pod(kube.namespace, label_selector=f"pod-template-hash={pod_hash}")
        .items
    )
    assert len(pods) == 4
    assert all(p.status.phase == "Running" for p in pods)


def test_observed_generation_lags_until_the_controller_steps(kube, apps, rolled_out):
    set_image(apps, kube, "web:2")
    before = apps.read_namespaced_deployment("web", kube.namespace)
    assert before.metadata.generation == 2
    assert before.status.observed_generation == 1
    kube.controller.step()
    assert apps.read_namespaced_deployment("web", kube.namespace).status.observed_generation == 2


def test_rolling_update_respects_max_surge_and_max_unavailable_at_every_step(
    kube, apps, rolled_out
):
    apps.patch_namespaced_deployment(
        "web",
        kube.namespace,
        {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}}},
    )
    kube.controller.settle()
    set_image(apps, kube, "web:2")
    seen = []
    while kube.controller.step():
        status = apps.read_namespaced_deployment("web", kube.namespace).status
        seen.append(
            (status.replicas or 0, status.updated_replicas or 0, status.available_replicas or 0)
        )
    assert len(seen) > 2  # the rollout took several observable steps
    assert all(replicas <= 4 + 1 for replicas, _, _ in seen)  # replicas + maxSurge
    assert all(available >= 4 - 1 for _, _, available in seen)  # replicas - maxUnavailable
    updated = [u for _, u, _ in seen]
    assert updated == sorted(updated)
    assert seen[-1] == (4, 4, 4)
    old, new = replica_sets(kube, apps)
    assert (old.spec.replicas, new.spec.replicas) == (0, 4)
    assert new.metadata.annotations["deployment.kubernetes.io/revision"] == "2"


def test_recreate_never_runs_old_and_new_pods_together(kube, apps):
    apps.create_namespaced_deployment(
        kube.namespace, deployment(replicas=3, strategy={"type": "Recreate"})
    )
    kube.controller.settle()
    set_image(apps, kube, "web:2")
    core = client.CoreV1Api(kube.api_client)
    saw_zero = False
    while kube.controller.step():
        images = {
            p.spec.containers[0].image for p in core.list_namespaced_pod(kube.namespace).items
        }
        assert len(images) <= 1
        saw_zero = saw_zero or not images
    assert saw_zero
    final = apps.read_namespaced_deployment("web", kube.namespace).status
    assert (final.updated_replicas, final.available_replicas) == (3, 3)


def test_a_broken_image_stalls_then_exceeds_the_progress_deadline(kube, apps, rolled_out):
    kube.controller.break_image("web:broken")
    apps.patch_namespaced_deployment(
        "web", kube.namespace, {"spec": {"progressDeadlineSeconds": 60}}
    )
    set_image(apps, kube, "web:broken")
    kube.controller.step()
    assert progressing(apps.read_namespaced_deployment("web", kube.namespace)).status == "True"
    kube.controller.settle()
    stuck = apps.read_namespaced_deployment("web", kube.namespace)
    condition = progressing(stuck)
    assert (condition.status, condition.reason) == ("False", "ProgressDeadlineExceeded")
    # 25% of 4: maxSurge 1, maxUnavailable 1. The controller takes one old pod down and runs
    # two new ones that never become ready; the other three old pods keep serving.
    assert stuck.status.available_replicas == 3
    assert stuck.status.updated_replicas == 2
    assert stuck.status.replicas == 5


def test_the_restarted_at_annotation_rolls_a_new_replica_set(kube, apps, rolled_out):
    apps.patch_namespaced_deployment(
        "web",
        kube.namespace,
        {
            "spec": {
                "template": {"metadata": {"annotations": {RESTARTED_AT: "2026-12-02T00:00:00Z"}}}
            }
        },
    )
    kube.controller.settle()
    old, new = replica_sets(kube, apps)
    assert new.spec.template.metadata.annotations[RESTARTED_AT] == "2026-12-02T00:00:00Z"
    assert (old.spec.replicas, new.spec.replicas) == (0, 4)


def test_going_back_to_an_old_template_reuses_its_replica_set_with_a_new_revision(
    kube, apps, rolled_out
):
    set_image(apps, kube, "web:2")
    kube.controller.settle()
    set_image(apps, kube, "web:1")
    kube.controller.settle()
    sets = replica_sets(kube, apps)
    assert [rs.spec.template.spec.containers[0].image for rs in sets] == ["web:2", "web:1"]
    assert sets[-1].metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    deployed = apps.read_namespaced_deployment("web", kube.namespace)
    assert deployed.metadata.annotations["deployment.kubernetes.io/revision"] == "3"


def test_scaling_through_the_scale_subresource_adds_pods(kube, apps, rolled_out):
    apps.patch_namespaced_deployment_scale("web", kube.namespace, {"spec": {"replicas": 6}})
    kube.controller.settle()
    status = apps.read_namespaced_deployment("web", kube.namespace).status
    assert (status.replicas, status.available_replicas) == (6, 6)
    assert len(replica_sets(kube, apps)) == 1


def test_deleting_a_deployment_collects_its_replica_sets_and_pods(kube, apps, rolled_out):
    apps.delete_namespaced_deployment("web", kube.namespace)
    kube.controller.step()
    assert replica_sets(kube, apps) == []
    assert client.CoreV1Api(kube.api_client).list_namespaced_pod(kube.namespace).items == []


def test_a_paused_deployment_does_not_roll_out(kube, apps, rolled_out):
    apps.patch_namespaced_deployment("web", kube.namespace, {"spec": {"paused": True}})
    set_image(apps, kube, "web:2")
    kube.controller.settle()
    paused = apps.read_namespaced_deployment("web", kube.namespace)
    assert len(replica_sets(kube, apps)) == 1
    assert progressing(paused).reason == "DeploymentPaused"


def test_auto_advance_makes_progress_on_each_request(kube, apps, rolled_out):
    kube.controller.auto_advance()
    set_image(apps, kube, "web:2")
    reads = 0
    while reads < 50:
        reads += 1
        dep = apps.read_namespaced_deployment("web", kube.namespace)
        if progressing(dep).reason == "NewReplicaSetAvailable" and dep.status.updated_replicas == 4:
            break
    assert 2 < reads < 50


def test_min_ready_seconds_delays_availability(kube, apps):
    kube.controller.step_seconds = 10
    apps.create_namespaced_deployment(kube.namespace, deployment(replicas=2, minReadySeconds=25))
    kube.controller.step()  # the ReplicaSet and its pods are created
    kube.controller.step()  # the pods are ready
    ready = apps.read_namespaced_deployment("web", kube.namespace).status
    assert (ready.ready_replicas, ready.available_replicas) == (2, None)
    kube.controller.settle()
    assert apps.read_namespaced_deployment("web", kube.namespace).status.available_replicas == 2
