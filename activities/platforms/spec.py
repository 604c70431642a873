"""The ``platform:`` vocabulary of a spec: one model per platform kind and the
``PlatformSpec`` one-of. Pure pydantic, apart from the implementations, so reading a spec
(a workflow, the CLI) imports no subprocess code.

    platform:
      command:
        deploy:  [ssh, "{host}", sudo, /opt/app/deploy.sh, "{version}"]
        current: [ssh, "{host}", cat, /opt/app/current-version]
        restart: [ssh, "{host}", sudo, systemctl, restart, "{service}"]

    platform:
      kubernetes:
        deployment:
          name: checkout                 # the team's Deployment: the stable version
          namespace: shop                # default: default
          context: prod-a                # a kubeconfig context of the worker's; default:
                                         # in-cluster, else the kubeconfig's current context
          container: app                 # default: the first container
          image: "registry.example.com/checkout:{version}"  # default: the stable image,
                                         # its tag replaced by the version
          # or several containers' images (instead of container/image); the others stay:
          # images: {app: "registry.example.com/checkout:{version}", proxy: "envoy:v1.31"}
          progressDeadlineSeconds: 600   # default: the Deployment's own
          canaryReplicas: 1              # default: as many as the stable Deployment

What the command platform does with them: :mod:`activities.platforms.command`; the
Kubernetes one: :mod:`activities.platforms.kubernetes` (the ownership model is in
docs/kubernetes.md). No credentials here: the worker holds them, the spec names a context.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Self

from pydantic import AfterValidator, Field, model_validator

from activities.argv import placeholders, render
from activities.kubernetes.names import DNS_LABEL, ContextName, DnsLabel, matching
from activities.model import MAX_SECONDS, Model, OneOf, PositiveSeconds

PLACEHOLDERS: Final = ("host", "port", "version", "service")
_KNOWN: Final = f"known: {', '.join(PLACEHOLDERS)}"


def _any_placeholder(arg: str) -> str:
    placeholders(arg, PLACEHOLDERS, _KNOWN)
    return arg


def _no_version(arg: str) -> str:
    if "version" in placeholders(arg, PLACEHOLDERS, _KNOWN):
        raise ValueError("{version} is only known to deploy")
    return arg


# Validated per element, so an error names it: ``stop[3]: {version} is only known to deploy``.
DeployArgv = Annotated[list[Annotated[str, AfterValidator(_any_placeholder)]], Field(min_length=1)]
Argv = Annotated[list[Annotated[str, AfterValidator(_no_version)]], Field(min_length=1)]


class CommandPlatformSpec(Model):
    """Argv templates per action; only ``deploy`` is required. ``env`` must hold no secrets:
    it is part of the workflow's input and history (its values are never logged)."""

    deploy: DeployArgv
    start: Argv | None = None
    stop: Argv | None = None
    restart: Argv | None = None
    current: Argv | None = None
    timeout_seconds: PositiveSeconds = 300.0
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None


CANARY_SUFFIX: Final = "-canary"
"""The canary Deployment deployflow owns is the stable one's name with this suffix."""

DeploymentName = Annotated[
    str,
    # 63 (a label value: the canary's name is one) less the canary suffix.
    matching(DNS_LABEL, "a DNS-1123 label (a-z, 0-9, '-')", 63 - len(CANARY_SUFFIX)),
]


def _image_template(value: str) -> str:
    placeholders(value, ("version",), "known: version")
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not an image reference")
    return value


ImageTemplate = Annotated[str, AfterValidator(_image_template)]


class DeploymentTarget(Model):
    """The team's Deployment, which stays the stable version, and where to find it.

    What a rollout runs is the recorded stable pod template with new images (``image`` in
    ``container``, or ``images`` by container name: the other containers as recorded), or
    ``template``, a whole pod template as written (an Argo Rollout's ``spec.template``:
    every container, sidecars included)."""

    name: DeploymentName
    namespace: DnsLabel = "default"
    context: ContextName | None = None
    container: DnsLabel | None = None
    image: ImageTemplate | None = None
    images: dict[DnsLabel, ImageTemplate] | None = Field(default=None, min_length=1)
    template: dict[str, Any] | None = None
    progress_deadline_seconds: int | None = Field(default=None, ge=1, le=MAX_SECONDS)
    canary_replicas: int | None = Field(default=None, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_way_to_name_images(self) -> Self:
        if self.images is not None and (self.image is not None or self.container is not None):
            raise ValueError("images: not with image or container (images names each container)")
        if self.template is not None:
            if self.image is not None or self.images is not None:
                raise ValueError("template: not with image or images (its containers name theirs)")
            names = template_containers(self.template)
            if self.container is not None and self.container not in names:
                raise ValueError(f"container: {self.container!r} is not in template ({names})")
        return self

    @property
    def canary_name(self) -> str:
        return self.name + CANARY_SUFFIX

    @property
    def version_container(self) -> str | None:
        """The container whose image tag says a stable template's version (None: the
        first): ``container``, else the first of ``images``."""
        return self.container or next(iter(self.images or {}), None)

    def images_for(self, version: str, container: str, stable_image: str) -> dict[str, str]:
        """The new images by container name: ``images`` rendered, else ``container``'s."""
        if self.images is not None:
            return {
                name: render([image], {"version": version}, f"images.{name}")[0]
                for name, image in self.images.items()
            }
        return {container: self.image_for(version, stable_image)}

    def image_for(self, version: str, stable_image: str) -> str:
        """The new version's image: ``image`` with ``{version}`` filled in, else the stable
        image with its tag (or digest) replaced by ``version``."""
        if self.image is not None:
            return render([self.image], {"version": version}, "image")[0]
        return f"{image_repository(stable_image)}:{version}"

    def describe(self, name: str | None = None) -> str:
        """``prod-a/shop/deployment/checkout`` (``default`` for the worker's own context)."""
        return f"{self.context or 'default'}/{self.namespace}/deployment/{name or self.name}"


def template_containers(template: dict[str, Any]) -> list[str]:
    """The container names of a pod template; ``ValueError`` unless each has a name and an
    image (what ``template`` must give, as a Deployment's would)."""
    spec = template.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not isinstance(containers, list) or not containers:
        raise ValueError("template.spec.containers: at least one container is required")
    names = []
    for i, container in enumerate(containers):
        if not isinstance(container, dict) or not all(
            isinstance(container.get(k), str) and container.get(k) for k in ("name", "image")
        ):
            raise ValueError(f"template.spec.containers[{i}]: needs a name and an image")
        names.append(container["name"])
    return names


def image_repository(image: str) -> str:
    """``registry:5000/team/app`` of ``registry:5000/team/app:v1`` or ``...@sha256:...``."""
    image = image.split("@", 1)[0]
    slash = image.rfind("/")
    colon = image.rfind(":")
    return image[:colon] if colon > slash else image


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None (a digest, or no tag: ``latest``)."""
    if "@" in image:
        return None
    slash, colon = image.rfind("/"), image.rfind(":")
    return image[colon + 1 :] if colon > slash else None


class KubernetesPlatformSpec(Model):
    """Versions run as Kubernetes Deployments: the team's (stable) and deployflow's canary."""

    deployment: DeploymentTarget


class PlatformSpec(OneOf):
    """One-of: exactly one platform kind is set (``platform: {command: {...}}``)."""

    label: ClassVar[str] = "platform"

    command: CommandPlatformSpec | None = None
    kubernetes: KubernetesPlatformSpec | None = None
