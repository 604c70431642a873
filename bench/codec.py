"""What the AES-GCM payload codec costs per payload (issue 14).

Encrypts and decrypts real deployflow payloads (as the pydantic converter writes them) with
``EncryptionCodec``, in this process: no server. For scale it also times the converter's own
round trip (to a payload and back to the model) without the codec. The payloads: a
``Weights`` activity result (tiny), a canary ``Rollout`` spec with analysis (a workflow
input), and JSON blobs of 20 KB and 200 KB (a long timeline, a big result).

    .venv/bin/python bench/codec.py [--runs 7] [--seconds 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from common import canary_rollout, machine, run_stamp
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from activities.routing.base import Weights
from workers.codec import EncryptionCodec
from workers.codec_keys import parse_keys

ROUND_TRIP_MS = 50.0  # a dev-server activity round trip on these machines (DESIGN §5)


def samples() -> dict[str, Any]:
    rollout = canary_rollout(
        "bench",
        [{"setWeight": 5}, {"pause": {"duration": "30m"}}, {"setWeight": 50}, {"setWeight": 100}],
        analysis={"templates": [{"templateName": "error-rate"}], "startingStep": 1},
        templates=[
            {
                "name": "error-rate",
                "metrics": [
                    {
                        "name": "error-rate",
                        "interval": "30s",
                        "count": 10,
                        "successCondition": "result < 0.01",
                        "provider": {
                            "prometheus": {
                                "address": "http://127.0.0.1:9090",
                                "query": 'sum(rate(http_requests_total{code=~"5.."}[1m]))',
                            }
                        },
                    }
                ],
            }
        ],
    )
    event = {"at": "2026-11-22T10:00:00Z", "kind": "step", "message": "x" * 60}
    return {
        "Weights": Weights(stable=90, canary=10),
        "Rollout spec": rollout,
        "20 KB JSON": {"events": [event] * 200},
        "200 KB JSON": {"events": [event] * 2000},
    }


async def per_call_us(call: Callable[[], Awaitable[object]], seconds: float, runs: int) -> float:
    """Median over ``runs`` of the mean time of one call, each run ``seconds`` long."""
    means = []
    for _ in range(runs):
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            for _ in range(20):
                await call()
            count += 20
        means.append(elapsed / count * 1e6)
    return statistics.median(means)


async def round_trip_us(converter: DataConverter, value: Any, args: argparse.Namespace) -> float:
    """One value to a payload and back, as a client then a worker would."""
    [payload] = await converter.encode([value])

    async def once() -> None:
        await converter.encode([value])
        await converter.decode([payload], [type(value)])

    return await per_call_us(once, args.seconds, args.runs)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one run")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"run: {run_stamp()}, median of {args.runs} runs of {args.seconds:g} s each")
    keys = parse_keys(f"bench:{base64.b64encode(os.urandom(32)).decode()}", "bench")
    codec = EncryptionCodec(keys)
    for name, value in samples().items():
        [plain] = await pydantic_data_converter.encode([value])
        [sealed] = await codec.encode([plain])
        encrypt = await per_call_us(partial(codec.encode, [plain]), args.seconds, args.runs)
        decrypt = await per_call_us(partial(codec.decode, [sealed]), args.seconds, args.runs)
        convert = await round_trip_us(pydantic_data_converter, value, args)
        both = encrypt + decrypt
        print(
            f"\n{name}: {len(plain.data):,} B of JSON, {len(sealed.data):,} B encrypted"
            f"\n  codec: encrypt {encrypt:.1f} µs + decrypt {decrypt:.1f} µs = {both:.1f} µs"
            f"\n  for scale: the pydantic converter's own round trip {convert:.1f} µs;"
            f" a {ROUND_TRIP_MS:g} ms activity round trip: the codec is"
            f" {both / (ROUND_TRIP_MS * 10):.3f} % of it per payload"
        )


if __name__ == "__main__":
    asyncio.run(main())
