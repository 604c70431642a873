"""What bench/chaos.py prints: a line per rollout while it runs, then the figures."""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from typing import Any

from chaos_judge import Plan, Result
from chaos_lanes import Lane
from common import percentile

TARGET_P95_S = 3.0
TARGET_MAX_S = 10.0


def print_result(result: Result, done: int, total: int) -> None:
    plan = result.plan
    mark = "ok" if result.correct else "WRONG"
    kills = []
    for kill in result.kills:
        if kill.progress is None:
            kills.append("no progress after it")
        elif kill.polling is None:
            kills.append(f"progress {kill.progress - kill.at:.1f} s after")
        else:
            kills.append(f"{kill.progress - kill.polling:.1f} s after polling")
    notes = [*result.faults]
    if result.abort:
        notes.append(f"abort {result.abort}")
    line = (
        f"#{plan.number} ({done}/{total}) {plan.lane} {plan.scenario} {result.version}: "
        f"{result.outcome} {mark} in {result.ended - result.began:.1f} s, "
        f"{result.workflow_tasks} workflow tasks; {len(result.kills)} kill(s)"
    )
    if kills:
        line += " (" + "; ".join(kills) + ")"
    if notes:
        line += " [" + "; ".join(notes) + "]"
    print(line, file=sys.stderr, flush=True)
    for kind, message in result.problems:
        print(f"    {kind}: {message}", file=sys.stderr, flush=True)
    if result.outcome not in ("Promoted", "RolledBack", "Aborted") and result.reason:
        print(f"    reason: {result.reason}", file=sys.stderr, flush=True)


def spread(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 2),
        "p95": round(percentile(values, 95), 2),
        "max": round(max(values), 2),
    }


def figures(
    results: list[Result],
    lanes: dict[str, Lane],
    restarts: list[dict[str, float]],
    planned: list[Plan],
    elapsed_s: float,
) -> dict[str, Any]:
    kills = [k for r in results for k in r.kills]
    recovered = [k for k in kills if k.progress is not None and k.polling is not None]
    from_polling = [k.progress - k.polling for k in recovered if k.progress and k.polling]
    from_kill = [k.progress - k.at for k in kills if k.progress is not None]
    problems = Counter(kind for r in results for kind, _ in r.problems)
    by_lane = {
        name: {
            "correct": sum(r.correct for r in results if r.plan.lane == name),
            "total": sum(1 for r in results if r.plan.lane == name),
        }
        for name in lanes
    }
    in_flight = [
        [r for r in results if r.began <= s["at"] + s["down_s"] and r.ended >= s["at"]]
        for s in restarts
    ]
    p95 = spread(from_polling).get("p95")
    return {
        "planned": len(planned),
        "run": len(results),
        "correct": sum(r.correct for r in results),
        "byLane": by_lane,
        "byScenario": dict(Counter(r.plan.scenario for r in results)),
        "outcomes": dict(Counter(r.outcome for r in results)),
        "aborts": {
            "accepted": sum(r.aborted for r in results),
            "atTimer": sum(r.aborted and r.plan.scenario == "abort-at-timer" for r in results),
            "inTheTimersActivation": sum(r.with_timer for r in results),
            "sentNotAccepted": sum(bool(r.abort) and not r.aborted for r in results),
        },
        "kills": {
            "total": len(kills),
            "rolloutsWithout": sum(not r.kills for r in results),
            "withoutProgress": sum(k.progress is None for k in kills),
        },
        "killToProgressS": {"fromPolling": spread(from_polling), "fromKill": spread(from_kill)},
        "problems": dict(problems),
        "regressions": problems["regression"],
        "splitEndStates": problems["split"],
        "doubleShifts": problems["double-shift"],
        "serverRestarts": [
            {
                "downS": round(s["down_s"], 1),
                "inFlight": len(group),
                "inFlightCorrect": sum(r.correct for r in group),
            }
            for s, group in zip(restarts, in_flight, strict=True)
        ],
        "workerExitsByThemselves": sum(len(lane.worker.exits) for lane in lanes.values()),
        "elapsedS": round(elapsed_s),
        "target": {
            "everyRolloutCorrect": bool(results)
            and len(results) == len(planned)
            and all(r.correct for r in results),
            "killToProgressP95Met": p95 is not None and p95 <= TARGET_P95_S,
        },
    }


def print_report(summary: dict[str, Any], results: list[Result]) -> None:
    s = summary
    print(f"\nrollouts correct: {s['correct']}/{s['run']} (planned {s['planned']}), "
          f"{s['elapsedS']} s")  # fmt: skip
    for name, counts in s["byLane"].items():
        print(f"  {name:<15} {counts['correct']}/{counts['total']}")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(s["outcomes"].items())))
    print("scenarios: " + ", ".join(f"{k} {v}" for k, v in sorted(s["byScenario"].items())))
    a = s["aborts"]
    print(f"aborts accepted: {a['accepted']} ({a['atTimer']} as a pause timer fired, "
          f"{a['inTheTimersActivation']} of them in the same activation as the TimerFired); "
          f"sent but not accepted (run already finishing): {a['sentNotAccepted']}")  # fmt: skip
    k = s["kills"]
    print(f"kills: {k['total']} SIGKILLs, each followed at once by a replacement worker; "
          f"rollouts without one: {k['rolloutsWithout']}; kills with no progress after: "
          f"{k['withoutProgress']}; workers that exited by themselves: "
          f"{s['workerExitsByThemselves']}")  # fmt: skip
    for label, key in (("the replacement polling", "fromPolling"), ("the SIGKILL", "fromKill")):
        d = s["killToProgressS"][key]
        if d["n"]:
            print(f"kill → progress, from {label}: p50 {d['p50']:.2f} s, p95 {d['p95']:.2f} s, "
                  f"max {d['max']:.2f} s (n={d['n']})")  # fmt: skip
    d = s["killToProgressS"]["fromPolling"]
    if d["n"]:
        met = d["p95"] <= TARGET_P95_S and d["max"] <= TARGET_MAX_S
        print(f"target (p95 ≤ {TARGET_P95_S:g} s, max ≤ {TARGET_MAX_S:g} s after polling): "
              f"{'met' if met else 'MISSED'}")  # fmt: skip
    print(
        f"regressions: {s['regressions']}; double shifts after abort: {s['doubleShifts']}; "
        f"split end states: {s['splitEndStates']}; every problem: "
        + (", ".join(f"{k} {v}" for k, v in sorted(s["problems"].items())) or "none")
    )
    for restart in s["serverRestarts"]:
        print(f"dev server restart: down {restart['downS']} s; {restart['inFlight']} rollouts "
              f"in flight, {restart['inFlightCorrect']} of them correct")  # fmt: skip
    wrong = [r for r in results if not r.correct]
    if wrong:
        print("wrong:")
        for r in wrong:
            first = "; ".join(f"{kind}: {message}" for kind, message in r.problems)
            print(f"  #{r.plan.number} {r.plan.lane} {r.plan.scenario} {r.workflow_id}: "
                  f"{r.outcome} — {first}")  # fmt: skip
