"""The base model for every value that crosses a Temporal boundary or appears in a spec.

Spec files use Argo Rollouts' camelCase names (``setWeight``, ``failureLimit``); Python code
uses snake_case. Models accept both, serialise by alias (so the Temporal UI shows the
names users wrote) and reject unknown fields so a typo is an error, not a silent default.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

# The longest wait or timeout a spec may ask for: a year. Anything longer is a mistake, and
# far longer values (1e20 s) overflow Python's timedelta and Temporal's durations.
MAX_SECONDS: Final = 365 * 24 * 3600
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
WholeSeconds = Annotated[int, Field(ge=0, le=MAX_SECONDS)]


class Model(BaseModel):
    """Frozen-by-convention, camelCase-aliased, extra fields forbidden."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class OneOf(Model):
    """A container where exactly one field is set: ``router: {nginx: {...}}``.

    Subclasses name themselves in ``label`` for the error message and list one optional
    field per kind; ``kind`` is the (spec-spelled) name of the one that is set, ``selected()``
    its spec.
    """

    label: ClassVar[str] = "one of"
    besides: ClassVar[frozenset[str]] = frozenset()
    """Fields that are not kinds (``router.instances``): never counted, never ``selected()``."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = self._chosen()
        if len(chosen) != 1:
            fields = type(self).model_fields
            kinds = ", ".join(
                self._spelling(n)
                for n, f in fields.items()
                if not f.exclude and n not in self.besides
            )
            got = ", ".join(chosen) or "none"
            raise ValueError(f"{self.label}: set exactly one of {kinds}; got {got}")
        return self

    @property
    def kind(self) -> str:
        return self._chosen()[0]

    def selected(self) -> Model:
        """The spec of the kind that is set: for ``router: {nginx: {...}}``, the nginx spec."""
        name = next(n for n in self._kinds() if getattr(self, n) is not None)
        chosen: Model = getattr(self, name)
        return chosen

    def _chosen(self) -> list[str]:
        return [self._spelling(n) for n in self._kinds() if getattr(self, n) is not None]

    @classmethod
    def _kinds(cls) -> list[str]:
        return [n for n in cls.model_fields if n not in cls.besides]

    @classmethod
    def _spelling(cls, name: str) -> str:
        return cls.model_fields[name].alias or name


def refuse(why: str) -> BeforeValidator:
    """For a field Argo Rollouts has and deployflow does not: absent is fine, set is refused
    with ``why`` at the field's own path. Use with ``NOT_SERIALISED``::

        datadog: Annotated[None, refuse("Argo's datadog provider"), NOT_SERIALISED] = None

    A spec pasted from Argo's docs then fails naming the field, instead of being read with a
    part silently dropped or failing with a bare "extra inputs are not permitted".
    """

    def refused(value: object) -> None:
        raise ValueError(f"not supported: {why}")

    return BeforeValidator(refused)


NOT_SERIALISED: Any = Field(default=None, exclude=True)
