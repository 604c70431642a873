"""Header routes in a canary: Argo's ``setHeaderRoute`` steps.

A step with ``match`` adds (or replaces) a route sending matching requests to the canary
whatever the weights; one without removes it. The router is told the whole set each time
(declarative, so a retry re-applies the same set). Whatever was set ends with the rollout:
a promotion clears the routes once all traffic is on the new version, a rollback right
after traffic is back on stable.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.routing.base import HeaderRoute
    from activities.routing.models import SetHeaderRoutesInput
    from workflows.core import retry as retry_policies
    from workflows.core.timeouts import ROUTER_HEARTBEAT, ROUTER_START_TO_CLOSE
    from workflows.rollouts import instances
    from workflows.rollouts.base import RolloutBase
    from workflows.rollouts.models import RolloutPhase
    from workflows.rollouts.spec import SetHeaderRoute

HEADER_ROUTES = "canary-header-routes"
"""Patch: ``setHeaderRoute`` steps call ``set_header_routes``; the rollout's end clears them."""


class HeaderRouteSteps(RolloutBase):
    _header_routes: dict[str, HeaderRoute] | None = None
    """The routes held now, by name; None until a setHeaderRoute step ran (then the end of
    the rollout clears them)."""

    async def _set_header_route(self, index: int, step: SetHeaderRoute) -> None:
        routes = dict(self._header_routes or {})
        route = step.route
        if route is None:
            routes.pop(step.name, None)
        else:
            routes[step.name] = route
        what = f"header route {step.name}" + (" removed" if route is None else "")
        self._set_phase(RolloutPhase.PROGRESSING, f"setting {what}")
        self._header_routes = routes
        await self._send_header_routes(list(routes.values()), f"step-{index}")
        self._event("header-route", f"{what}; held: {', '.join(routes) or 'none'}")

    async def _clear_header_routes(self, label: str, retry: RetryPolicy) -> None:
        """Remove every header route the rollout set (nothing if no step set one)."""
        if self._header_routes is None:
            return
        await self._send_header_routes([], label, retry)
        self._header_routes = {}
        self._event("header-route", f"header routes removed ({label})")

    async def _send_header_routes(
        self, routes: list[HeaderRoute], label: str, retry: RetryPolicy = retry_policies.ROUTER
    ) -> None:
        names = ", ".join(r.name for r in routes) or "none"
        await self._uncancellable(
            instances.on_router(
                "set_header_routes",
                self._rollout.spec.router,
                lambda router: SetHeaderRoutesInput(
                    router=router, routes=routes, key=self._key(label)
                ),
                list[HeaderRoute],
                start_to_close_timeout=ROUTER_START_TO_CLOSE,
                heartbeat_timeout=ROUTER_HEARTBEAT,
                retry_policy=retry,
                summary=f"header routes to the canary: {names} ({label})",
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        )
