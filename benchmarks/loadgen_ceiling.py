"""The load generator's own limits, against a trivial local server that answers instantly.

1. Ceiling: requests/s the load generator completes against a server (another process) that
   streams 4 tiny SSE chunks with no delay, open loop at rate inf with a cap on requests in
   flight, and closed loop at a few concurrencies.
2. Schedule keeping: open loop at fixed rates (Poisson); the achieved arrival rate and how late
   requests leave against their seeded schedule.
3. Timing overhead: the server waits a known 50 ms before the first chunk and 20 ms between
   chunks; measured TTFT - 50 ms and ITL - 20 ms at concurrency 1 and 32. This includes the
   trivial server's own asyncio timer jitter and loopback TCP, so it bounds the generator's own
   overhead from above.

Run: python benchmarks/loadgen_ceiling.py [--requests 3000] [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def serve(port: int) -> None:
    """The trivial server: POST /d{first_ms}-g{gap_ms}/v1/completions streams 4 chunks then [DONE]."""
    from aiohttp import web

    def chunk(text: str) -> bytes:
        return b"data: " + json.dumps({"choices": [{"index": 0, "text": text, "finish_reason": None}]}).encode() + \
            b"\n\n"

    async def completions(request):
        first, gap = (int(x) / 1000 for x in re.match(r"d(\d+)-g(\d+)", request.match_info["shape"]).groups())
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for k in range(4):
            if (first if k == 0 else gap) > 0:
                await asyncio.sleep(first if k == 0 else gap)
            await resp.write(chunk(" t"))
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def models(request):
        return web.json_response({"object": "list", "data": [{"id": "m"}]})

    app = web.Application()
    app.add_routes([web.post("/{shape}/v1/completions", completions), web.get("/{shape}/v1/models", models)])
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *_: print("ready", flush=True), access_log=None)


def run_load(base: str, shape: str, out: Path, rate: float | None, concurrency: int | None, n: int,
             seed: int = 0) -> dict:
    """One load point through the shipped load generator; returns its record."""
    from infra_bench.endpoints import bench
    from infra_bench.endpoints.client import RequestOptions
    from infra_bench.endpoints.inputs import Prompts
    from infra_bench.endpoints.load import Budget
    from infra_bench.endpoints.target import resolve

    target = resolve(f"{base}/{shape}/v1", "completions", None)
    axis = "rate" if rate is not None else "concurrency"
    strategy = bench.Strategy(axis, "fixed", (rate if rate is not None else float(concurrency),),
                              concurrency if rate is not None else None)
    test = bench.LoadTest(target, RequestOptions(model="m"), strategy, Budget(n), Prompts("completions", seed, 16, 4),
                          warmup=20, stop_when_saturated=False, metrics_url=None, spec={"api": "completions"})
    result = bench.run(test, out, lambda _: None, lambda _: None)
    return result.records[0]


def ms(x: float) -> str:
    return f"{x * 1e3:.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="seconds: 60 requests per point (15 for one slow client), rates up to 300/s "
                                                         "(checks the script runs; not a ceiling)")
    args = ap.parse_args()
    if args.quick:
        args.requests = 60
    if args.serve is not None:
        serve(args.serve)
        return
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready"
    base = f"http://127.0.0.1:{port}"
    out = Path(tempfile.mkdtemp())
    n = args.requests
    try:
        print("1. ceiling against an instant 4-chunk SSE server (server in its own process)")
        for label, rate, conc in [("open loop, rate inf, max 64 in flight", float("inf"), 64),
                                  ("open loop, rate inf, max 256 in flight", float("inf"), 256),
                                  ("closed loop, concurrency 1", None, 1),
                                  ("closed loop, concurrency 16", None, 16),
                                  ("closed loop, concurrency 64", None, 64)]:
            m = run_load(base, "d0-g0", out, rate, conc, n)["metrics"]
            print(f"   {label:<40} {m['requests_per_s']:8.0f} req/s  ({m['completed']}/{m['sent']} ok, "
                  f"E2E p50 {ms(m['e2e_s']['p50'])}, p99 {ms(m['e2e_s']['p99'])})")
        print("2. open-loop schedule keeping (Poisson, seeded): achieved arrival rate, lateness of sends")
        from infra_bench.endpoints.arrivals import arrival_times
        for rate in (100, 300) if args.quick else (100, 300, 600, 1000, 1500):
            count = min(n, int(rate * 4))
            r = run_load(base, "d0-g0", out, float(rate), None, count, seed=5)
            it = arrival_times(float(rate), 1.0, seed=5 + 1)
            planned = np.array([next(it) for _ in range(count)])
            late = np.array([s["sent_s"] for s in r["samples"]]) - planned
            m = r["metrics"]
            print(f"   rate {rate:>5}/s: arrivals {m['arrival_rate']:7.1f}/s, completed {m['requests_per_s']:7.1f}/s, "
                  f"send lateness p50 {ms(float(np.median(late)))}, p99 {ms(float(np.percentile(late, 99)))}, "
                  f"max in flight {m['max_in_flight']}")
        print("3. timing overhead: server waits 50 ms before the first chunk, then 20 ms between chunks")
        for conc in (1, 32):
            count = min(n // 4, 200) if conc == 1 else min(n, 1600)  # one client: 110 ms a request
            m = run_load(base, "d50-g20", out, None, conc, count)["metrics"]
            print(f"   concurrency {conc:>2}: TTFT - 50 ms: p50 {ms(m['ttft_s']['p50'] - 0.05)}, "
                  f"p99 {ms(m['ttft_s']['p99'] - 0.05)};  ITL - 20 ms: p50 {ms(m['itl_s']['p50'] - 0.02)}, "
                  f"p99 {ms(m['itl_s']['p99'] - 0.02)}  (n = {m['ttft_s']['n']})")
    finally:
        server.terminate()
        server.wait(10)
    print(f"records under {out}")


if __name__ == "__main__":
    main()
