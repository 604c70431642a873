"""A command's function named as ``module:function``, imported only when the command runs
(every CLI call builds the parser; see ``starters/commands.py``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class Handler:
    """A command's function as ``module:function``, imported when the command runs."""

    __slots__ = ("target",)

    def __init__(self, target: str) -> None:
        self.target = target

    def resolve(self) -> Callable[..., Any]:
        module, _, name = self.target.partition(":")
        function: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return function

    def __call__(self, *args: Any) -> Any:
        return self.resolve()(*args)
