"""The traffic-router seam: one Protocol, one implementation per file beside it."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field, model_validator

from activities.model import Model


class Weights(Model):
    """Absolute traffic split in percent; always sums to 100."""

    stable: int = Field(ge=0, le=100)
    canary: int = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _sums_to_100(self) -> Weights:
        if self.stable + self.canary != 100:
            raise ValueError(f"stable + canary must be 100, got {self.stable} + {self.canary}")
        return self

    @classmethod
    def canary_at(cls, canary: int) -> Weights:
        return cls(stable=100 - canary, canary=canary)


class TrafficRouter(Protocol):
    """Moves traffic between the stable and canary versions of one service.

    ``set_weights`` is declarative and idempotent: calling it twice with the same weights
    changes nothing the second time. It either applies the whole change or leaves the
    previous routing in place.
    """

    def set_weights(self, weights: Weights) -> None: ...

    def get_weights(self) -> Weights: ...
