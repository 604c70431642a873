"""The base model for every value that crosses a Temporal boundary or appears in a spec.

Spec files use Argo Rollouts' camelCase names (``setWeight``, ``failureLimit``); Python code
uses snake_case. Models accept both, serialise by alias (so the Temporal UI shows the
names users wrote) and reject unknown fields so a typo is an error, not a silent default.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    """Frozen-by-convention, camelCase-aliased, extra fields forbidden."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
    )
