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
          progressDeadlineSeconds: 600   # default: the Deployment's own
          canaryReplicas: 1              # default: as many as the stable Deployment

What the command platform does with them: :mod:`activities.platforms.command`; the
Kubernetes one: :mod:`activities.platforms.kubernetes` (the ownership model is in
docs/kubernetes.md). No credentials here: the worker holds them, the spec names a context.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final

from pydantic import AfterValidator, Field

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
    """The team's Deployment, which stays the stable version, and where to find it."""

    name: DeploymentName
    namespace: DnsLabel = "default"
    context: ContextName | None = None
    container: DnsLabel | None = None
    image: ImageTemplate | None = None
    progress_deadline_seconds: int | None = Field(default=None, ge=1, le=MAX_SECONDS)
    canary_replicas: int | None = Field(default=None, ge=1, le=10_000)

    @property
    def canary_name(self) -> str:
        return self.name + CANARY_SUFFIX

    def image_for(self, version: str, stable_image: str) -> str:
        """The new version's image: ``image`` with ``{version}`` filled in, else the stable
        image with its tag (or digest) replaced by ``version``."""
        if self.image is not None:
            return render([self.image], {"version": version}, "image")[0]
        return f"{image_repository(stable_image)}:{version}"

    def describe(self, name: str | None = None) -> str:
        """``prod-a/shop/deployment/checkout`` (``default`` for the worker's own context)."""
        return f"{self.context or 'default'}/{self.namespace}/deployment/{name or self.name}"


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
