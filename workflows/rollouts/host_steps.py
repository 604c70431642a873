"""Bringing the new version up on a set of hosts before it gets traffic: deploy, health
checks, smoke tests — shared by blue-green (the preview pool) and canary (the canary
pool, when the spec has a platform); and the run of the strategies that update every host
(recreate, rolling)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.rollouts import host_ops
    from workflows.rollouts.base import RolloutBase
    from workflows.rollouts.models import RolloutPhase, RolloutResult
    from workflows.rollouts.state import Stop
    from workflows.rollouts.targets import Side


class HostSteps(RolloutBase):
    _previous: dict[str, str | None]  # set by _read_previous_versions before any change

    async def _read_sides(self) -> str | None:
        """Read the router: the side at 0 % gets the new version (``_new_side``). Returns why
        not, when traffic is split (another rollout is half-way)."""
        weights = await self._before_changes("read the router", host_ops.get_weights(self._rollout))
        if isinstance(weights, Stop):
            return weights.reason
        if weights.stable not in (0, 100):
            return (
                f"traffic is split {weights.stable}/{weights.canary}: finish or abort the "
                "running rollout first (one server list must be live and the other idle)"
            )
        self._status.weights = weights
        self._new_side = "stable" if weights.canary == 100 else "canary"
        return None

    async def _read_previous_versions(self, hosts: list[str]) -> Stop | None:
        """Record what each host runs before anything changes (``_previous``, for the
        rollback); a Stop when that cannot be read."""
        previous = await self._before_changes(
            "read what the hosts run",
            host_ops.previous_versions(self._rollout, hosts, self._key("current")),
        )
        if isinstance(previous, Stop):
            return previous
        self._previous = previous
        self._event("versions", ", ".join(f"{h}={v or 'nothing'}" for h, v in previous.items()))
        return None

    async def _on_every_host(
        self,
        update: Callable[[list[str]], Coroutine[Any, Any, None]],
        undo: Callable[[str], Coroutine[Any, Any, None]],
    ) -> RolloutResult:
        """Recreate's and rolling's run on hosts: read what every host runs (a failed read
        ends the run with nothing changed), then ``update`` them all, with ``undo`` on a stop."""
        hosts = self._rollout.spec.targets.everywhere()
        refused = await self._read_previous_versions(hosts)
        if refused is not None:
            return self._finish(refused.phase, refused.reason)
        stopped = await self._guarded(update(hosts), undo)
        return stopped or self._finish(
            RolloutPhase.PROMOTED, f"all {len(hosts)} hosts run {self._rollout.spec.version}"
        )

    def _targets(self, side: Side) -> list[str]:
        return self._rollout.spec.targets.side(side)

    async def _deploy(self, targets: list[str], version: str) -> None:
        results = await asyncio.gather(
            *(
                host_ops.platform_action(
                    self._rollout, "deploy", t, self._key(f"deploy/{t}"), version=version
                )
                for t in targets
            )
        )
        for result in results:
            state = "deployed" if result.changed else "already ran"
            tail = f": {result.output[-1]}" if result.output else ""
            self._event("deploy", f"{result.target} {state} {version}{tail}")

    async def _check(self, targets: list[str]) -> None:
        """Health checks, then smoke tests, on ``targets``; a failure is a Stop."""
        for line in await host_ops.require_healthy(self._rollout, targets, self._key("health")):
            self._event("health", line)
        if count := await host_ops.require_smoke_tests(self._rollout, targets, self._key("smoke")):
            self._event("smoke", f"{count} smoke test(s) passed on {len(targets)} host(s)")
