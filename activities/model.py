"""The base model for every value that crosses a Temporal boundary or appears in a spec.

Spec files use Argo Rollouts' camelCase names (``setWeight``, ``failureLimit``); Python code
uses snake_case. Models accept both, serialise by alias (so the Temporal UI shows the
names users wrote) and reject unknown fields so a typo is an error, not a silent default.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
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

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = self._chosen()
        if len(chosen) != 1:
            kinds = ", ".join(self._spelling(n) for n in type(self).model_fields)
            got = ", ".join(chosen) or "none"
            raise ValueError(f"{self.label}: set exactly one of {kinds}; got {got}")
        return self

    @property
    def kind(self) -> str:
        return self._chosen()[0]

    def selected(self) -> Model:
        """The spec of the kind that is set: for ``router: {nginx: {...}}``, the nginx spec."""
        name = next(n for n in type(self).model_fields if getattr(self, n) is not None)
        chosen: Model = getattr(self, name)
        return chosen

    def _chosen(self) -> list[str]:
        fields = type(self).model_fields
        return [self._spelling(n) for n in fields if getattr(self, n) is not None]

    @classmethod
    def _spelling(cls, name: str) -> str:
        return cls.model_fields[name].alias or name
