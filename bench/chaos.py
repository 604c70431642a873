"""Chaos: rollouts of every strategy while workers are SIGKILLed and parts fail.

DESIGN §6 target: "worker SIGKILLed at random points of ≥ 50 rollouts (all strategies,
aborts included): every one ends Promoted/RolledBack/Aborted with the router matching,
0 split end states; progress again ≤ 3 s (p95) after a replacement worker polls."

Everything is real and local (chaos_parts.py, chaos_traffic.py): a Temporal dev server on
a SQLite file, and five lanes, each a strategy on its own load balancer with its own
``deployflow worker`` and hosts run by the host agent (examples/demo/host.py) through the
command platform:

    canary-nginx    canary on NGINX          canary-haproxy  canary on HAProxy
    blue-green      blue-green on HAProxy    rolling         rolling on NGINX (3 hosts)
    recreate        recreate on HAProxy

Prometheus scrapes every host each second; a load thread sends each a few requests a
second. Steps are short (pauses of ~1 s, analysis every 1 s). Every rollout has its lane's
worker SIGKILLed 1-2 times at random moments (seeded; a replacement is started at once),
and one of: nothing more (promote), an ``abort`` part-way, an ``abort`` as a pause timer
fires (the worker killed just before: bench/chaos_rollout.py), errors injected into the new
version (canary, blue-green: analysis fails) or a bad build (rolling, recreate: health
checks fail). Half-way through the soak the dev server is stopped and started again on the
same file. Then, one at a time: Prometheus stopped during analysis, ``nginx -t`` failing
mid-rollout, HAProxy's admin socket gone mid-rollout (with and without an abort).

Each rollout is correct when it ended with the expected outcome, the router (or every host)
holds what that outcome means and serves it, the new version's share never went backwards
while moving forward (router sampled every 50 ms, and every set_weight in the history) and
nothing moved forward after an accepted abort (history). Exit 0 only if every rollout was.

    .venv/bin/python bench/chaos.py [--rollouts 50] [--seed 1] [--strategies ...] [--json]

``--kube`` runs the Kubernetes lanes instead (bench/chaos_kube.py): canaries through
ingress-nginx, Istio and replica counts against the API server double, same kills.

    .venv/bin/python bench/chaos.py --kube [--rollouts 30] [--seed 1] [--max-minutes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from chaos_judge import Plan, Result
from chaos_kube import run_kube
from chaos_lanes import LANES, STRATEGY, Lane, build, host_count
from chaos_parts import DevServer, PartError, Prometheus, free_port
from chaos_report import figures, print_report, print_result
from chaos_rollout import Context, run
from chaos_traffic import Hosts, Load
from common import exit_now, machine, run_stamp

from workers.logging_setup import configure_logging

# Fault rollouts, run one at a time after the soak (each needs its lane to itself, and
# Prometheus going down would fail every other rollout's analysis too).
FAULTS = (
    ("canary-nginx", "prometheus-down"),
    ("canary-haproxy", "socket-gone"),
    ("canary-nginx", "nginx-test-fails"),
    ("blue-green", "prometheus-down"),
    ("canary-haproxy", "socket-gone-abort"),
    ("rolling", "nginx-test-fails"),
)
# Workflow tasks a clean rollout of each strategy completes at least: the random kill and
# abort moments are drawn below it, so they fall inside the run.
TASKS = {"canary": 14, "blueGreen": 10, "rolling": 12, "recreate": 5}
EARLY = 5  # workflow tasks every run reaches, even one that rolls back at its first check
PAUSES = {"canary": 3, "blueGreen": 1, "rolling": 2}  # pause timers to abort at
MIX = {"abort": 0.25, "abort-at-timer": 0.17, "bad": 0.18}  # the rest: promote


def plans(count: int, lanes: list[str], seed: int) -> tuple[list[Plan], list[Plan]]:
    """The soak's rollouts in a seeded order, and the fault rollouts."""
    rng = random.Random(seed)
    faults = [f for f in FAULTS if f[0] in lanes][: count // 4]
    soak = count - len(faults)
    order = [lanes[i % len(lanes)] for i in range(soak)]
    rng.shuffle(order)
    pool = [s for s, share in MIX.items() for _ in range(round(share * soak))]
    pool += ["promote"] * (soak - len(pool))
    rng.shuffle(pool)
    made = []
    for number, (lane, scenario) in enumerate([*zip_fit(order, pool), *faults], start=1):
        strategy = STRATEGY[lane]
        tasks = TASKS[strategy]
        # The first kill within the part of the run this scenario surely reaches; the
        # second (after the first was recovered from) soon after; an abort after the first.
        reach = tasks if scenario == "promote" else EARLY if scenario != "abort" else tasks // 2
        first = rng.randint(1, min(reach, tasks))
        kills = tuple(
            (rng.randint(1, tasks // 3) if second else first, round(rng.uniform(0, 0.6), 2))
            for second in range(rng.choice((1, 2)) - (scenario == "abort-at-timer"))
        )
        made.append(
            Plan(
                number=number,
                lane=lane,
                scenario=scenario,
                kills=kills,
                abort_at=(rng.randint(first, tasks), round(rng.uniform(0, 0.6), 2)),
                timer=rng.randrange(PAUSES.get(strategy, 1)),
                inject_s=round(rng.uniform(0, 0.5), 2),
                post=rng.random() < 0.5,
            )
        )
    return made[:soak], made[soak:]


def zip_fit(order: list[str], pool: list[str]) -> list[tuple[str, str]]:
    """Pair lanes with scenarios; a lane without pauses (recreate) takes none at a timer."""
    left, paired = list(pool), []
    for lane in order:
        fits = [s for s in left if s != "abort-at-timer" or STRATEGY[lane] in PAUSES]
        scenario = fits[0] if fits else "abort"
        if fits:
            left.remove(scenario)
        paired.append((lane, scenario))
    return paired


async def soak(
    ctx: Context, lanes: dict[str, Lane], todo: list[Plan], args: argparse.Namespace,
    server: DevServer, results: list[Result], restarts: list[dict[str, float]],
) -> None:  # fmt: skip
    """Lanes run their rollouts in order, ``--parallel`` rollouts at a time; the dev server
    is restarted a few seconds after half of them have started."""
    gate = asyncio.Semaphore(args.parallel)
    started = 0
    half = max(1, len(todo) // 2)
    restart: asyncio.Task[None] | None = None

    async def restart_server() -> None:
        await asyncio.sleep(3)
        down = time.time()
        seconds = await server.restart()
        restarts.append({"at": down, "down_s": seconds})
        print(f"  dev server restarted (same file): down {seconds:.1f} s", file=sys.stderr)

    async def lane_loop(name: str) -> None:
        nonlocal started, restart
        for plan in [p for p in todo if p.lane == name]:
            if time.monotonic() > args.deadline:
                return
            async with gate:
                started += 1
                if started == half and args.server_restart:
                    restart = asyncio.create_task(restart_server())
                results.append(await run(ctx, lanes[name], plan))
                print_result(results[-1], len(results), args.total)

    async def supervise() -> None:
        """A worker that exited by itself (not our SIGKILL) is replaced."""
        while True:
            for lane in lanes.values():
                async with lane.guard:
                    if lane.worker.exited():
                        await lane.worker.start()
            await asyncio.sleep(1)

    watcher = asyncio.create_task(supervise())
    try:
        await asyncio.gather(*(lane_loop(name) for name in lanes))
        if restart is not None:
            await restart
    finally:
        watcher.cancel()


async def kube_async(args: argparse.Namespace) -> int:
    """The Kubernetes lanes on a dev server of their own (no hosts, no Prometheus)."""
    workdir = Path(tempfile.mkdtemp(prefix="deployflow-chaos-kube-"))
    print(f"machine: {machine()}", file=sys.stderr)
    print(f"work dir: {workdir}; seed {args.seed}; {args.rollouts} rollouts", file=sys.stderr)
    server = DevServer(workdir)
    try:
        await server.start()
        client = await server.client()
        code = await run_kube(workdir, server, client, args.rollouts, args.seed, run_stamp(),
                              args.max_minutes)  # fmt: skip
    finally:
        server.process.stop()
    if code == 0 and not args.keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs: {workdir}", file=sys.stderr)
    return code


async def main_async(args: argparse.Namespace) -> int:
    if args.kube:
        return await kube_async(args)
    workdir = Path(tempfile.mkdtemp(prefix="deployflow-chaos-"))
    stamp = run_stamp()
    soaking, faults = plans(args.rollouts, args.strategies, args.seed)
    todo = soaking + faults
    args.total = len(todo)
    args.deadline = time.monotonic() + args.max_minutes * 60
    print(f"machine: {machine()}", file=sys.stderr)
    print(f"work dir: {workdir}; seed {args.seed}; {len(todo)} rollouts", file=sys.stderr)
    server = DevServer(workdir)
    hosts = Hosts(workdir / "hosts")
    ports = {name: [free_port() for _ in range(host_count(name))] for name in args.strategies}
    prometheus = Prometheus(workdir, [p for group in ports.values() for p in group])
    lanes: dict[str, Lane] = {}
    load: Load | None = None
    results: list[Result] = []
    restarts: list[dict[str, float]] = []
    began = time.time()
    try:
        await server.start()
        await prometheus.start()
        for name in args.strategies:
            lane = build(name, workdir, hosts, ports[name], server.address,
                         prometheus.address, stamp)  # fmt: skip
            lanes[name] = lane
            await asyncio.to_thread(lane.setup)
            await lane.router.start()
            await lane.worker.start()
        load = Load([p for group in ports.values() for p in group], rate=args.load_rate)
        load.start()
        up = f"dev server {server.address}, Prometheus {prometheus.address}"
        print(f"parts up in {time.time() - began:.0f} s: {up}, lanes {', '.join(lanes)}",
              file=sys.stderr)  # fmt: skip
        histories = workdir / "histories"
        histories.mkdir()
        client = await server.client()
        ctx = Context(client, prometheus, stamp, args.timeout, histories, args.keep_logs)
        await soak(ctx, lanes, soaking, args, server, results, restarts)
        for plan in faults:
            if time.monotonic() > args.deadline:
                break
            results.append(await run(ctx, lanes[plan.lane], plan))
            print_result(results[-1], len(results), args.total)
    except PartError as e:
        print(f"chaos: {e}", file=sys.stderr)
    finally:
        if load is not None:
            load.stopped.set()
        for lane in lanes.values():
            with contextlib.suppress(Exception):
                await lane.worker.stop()
            lane.router.process.stop()
        await asyncio.to_thread(hosts.stop_all)
        prometheus.stop()
        server.process.stop()
    summary = figures(results, lanes, restarts, todo, time.time() - began)
    ok = bool(results) and len(results) == len(todo) and all(r.correct for r in results)
    document = json.dumps(summary | {"rollouts": [asdict(r) for r in results]}, default=str)
    if args.json:
        print(document)
    else:
        print_report(summary, results)
    keep = args.keep_logs or not ok
    if keep:
        (workdir / "report.json").write_text(document)
        print(f"logs, histories and report.json: {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Exit 0 only if every rollout was correct; 1 otherwise (the report says why).",
    )
    parser.add_argument("--rollouts", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--strategies", nargs="+", default=list(LANES), choices=LANES, metavar="LANE",
        help=f"lanes to run (default all: {', '.join(LANES)})",
    )  # fmt: skip
    parser.add_argument("--parallel", type=int, default=3, help="rollouts at a time (soak)")
    parser.add_argument("--timeout", type=float, default=240, help="bound per rollout, s")
    parser.add_argument("--max-minutes", type=float, default=45, help="no new rollout after")
    parser.add_argument("--load-rate", type=float, default=4, help="requests/s to each host")
    parser.add_argument("--no-server-restart", dest="server_restart", action="store_false")
    parser.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    parser.add_argument("--keep-logs", action="store_true", help="keep the work dir")
    parser.add_argument("--kube", action="store_true", help="the Kubernetes lanes instead")
    args = parser.parse_args(argv)
    if not 1 <= args.rollouts <= 500 or not 1 <= args.parallel <= 5:
        parser.error("need 1 <= --rollouts <= 500 and 1 <= --parallel <= 5")
    if not 30 <= args.timeout <= 900 or not 1 <= args.max_minutes <= 180:
        parser.error("need 30 <= --timeout <= 900 and 1 <= --max-minutes <= 180")
    args.strategies = list(dict.fromkeys(args.strategies))
    # The routers' own code resets lanes here: only its errors belong in the report.
    configure_logging(json=True, level=logging.ERROR)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    exit_now(main())
