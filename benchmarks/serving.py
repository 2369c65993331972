"""The decision service: `/decide` latency over loopback HTTP at fixed rates, max throughput, in process.

One run: a calibrated xgb+lgbm ensemble (200 trees each, n_jobs=1) on the core feature set is trained on
synthetic bars, registered and promoted in the `[test]` profile's PostgreSQL; per-symbol state in its Redis.
1. In process: `DecisionEngine.decide` on one bar (validation, features, model), Redis write-behind/-through.
2. The bento (`bentoml serve`, 1 worker, `gc.freeze()` after start-up) and, for comparison, the same ASGI app
   on plain uvicorn; each driven from another process (aiohttp, open loop: latency counted from the scheduled
   send time, so queueing shows) at fixed rates, then closed loop with 8 connections for max throughput.
Requests rotate over 200 fresh symbols, one new bar each. The 2 cores are shared with the client (and, on
the shared development machine, with other work): absolute numbers vary run to run.
Run: `.venv/bin/python benchmarks/serving.py [--rates 100,500] [--seconds 5]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="tradekit-bench-bentoml-"))

ROOT = Path(__file__).resolve().parents[1]
PREFIX = os.environ.setdefault(
    "TRADEKIT_BENCH_SYMBOLS", f"B{uuid.uuid4().hex[:6]}-"
)  # fresh Redis state per run
SYMBOLS, CONNECTIONS = 200, 8
TARGET_INPROC_P99_MS, TARGET_HTTP_P99_MS = 1.0, 10.0


def _payloads(start: int, n: int) -> list[bytes]:
    "Request bodies: request i is bar `start + i` of one long synthetic series, for symbol i % SYMBOLS."
    from tradekit.data import synthetic_bars
    from tradekit.serving.engine import request_body

    bars = synthetic_bars(start + n, seed=11, freq="1s").iloc[start:]
    return [
        json.dumps(request_body(f"{PREFIX}{(start + i) % SYMBOLS}", bars.iloc[i : i + 1])).encode()
        for i in range(n)
    ]


async def _open_loop(url: str, key: str, rate: float, seconds: float, start: int) -> dict:
    import aiohttp

    bodies = _payloads(start, int(rate * seconds))
    headers = {"X-API-Key": key, "content-type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as http:
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.2

        async def one(i: int, body: bytes) -> tuple[int, float]:
            scheduled = t0 + i / rate
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            async with http.post(f"{url}/decide", data=body, headers=headers) as r:
                await r.read()
                return r.status, loop.time() - scheduled

        out = await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    lat = np.array([t for _, t in out]) * 1e3
    codes = [c for c, _ in out]
    rps = len(out) / (seconds + max(t for _, t in out))  # the last reply came this late after its slot
    return dict(
        n=len(out),
        ok=codes.count(200),
        rps=rps,
        p50=float(np.percentile(lat, 50)),
        p99=float(np.percentile(lat, 99)),
    )


async def _closed_loop(url: str, key: str, seconds: float, start: int) -> dict:
    import aiohttp

    bodies = _payloads(start, 20_000)
    headers = {"X-API-Key": key, "content-type": "application/json"}
    done, codes, it = [], [], iter(bodies)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as http:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds

        async def worker() -> None:
            while loop.time() < end:
                t = loop.time()
                async with http.post(f"{url}/decide", data=next(it), headers=headers) as r:
                    await r.read()
                    codes.append(r.status)
                done.append(loop.time() - t)

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    lat = np.array(done) * 1e3
    return dict(n=len(done), ok=codes.count(200), rps=len(done) / seconds, p50=float(np.median(lat)),
                p99=float(np.percentile(lat, 99)))  # fmt: skip


def _drive(url: str, key: str, rates: list[float], seconds: float, start: int) -> list[dict]:
    "Run the load generator in another process; its results."
    args = [sys.executable, __file__, "--drive", url, "--key", key, "--rates", ",".join(map(str, rates))]
    args += ["--seconds", str(seconds), "--start", str(start)]
    out = subprocess.run(args, check=True, capture_output=True, text=True, env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _driver(args: argparse.Namespace) -> None:
    rates, results, start = [float(r) for r in args.rates.split(",")], [], args.start
    asyncio.run(_closed_loop(args.drive, args.key, 3.0, start))  # warm-up: every symbol's state, first calls
    start += 20_000
    for rate in rates:
        results.append(
            dict(
                mode=f"{rate:g} req/s",
                **asyncio.run(_open_loop(args.drive, args.key, rate, args.seconds, start)),
            )
        )
        start += int(rate * args.seconds)
    results.append(
        dict(
            mode=f"max ({CONNECTIONS} conns)",
            **asyncio.run(_closed_loop(args.drive, args.key, args.seconds, start)),
        )
    )
    print(json.dumps(results))


def _setup() -> tuple:
    "A production model in the [test] registry, an API key, and the settings."
    from tradekit.auth import create_api_key
    from tradekit.config import load_settings
    from tradekit.data import synthetic_bars
    from tradekit.models.training import MemberSpec, TrainSpec, train
    from tradekit.registry import Stage, fingerprint, promote, register
    from tradekit.services import open_database

    settings = load_settings(profile="test", settings_file=ROOT / "settings.ini")
    db, name = open_database(settings), f"bench-{uuid.uuid4().hex[:8]}"
    trees = dict(n_estimators=200, max_depth=3, learning_rate=0.03, n_jobs=1)
    spec = TrainSpec(
        name=name,
        n_splits=3,
        members=(
            MemberSpec(kind="xgb", params=trees),
            MemberSpec(kind="lgbm", params=trees),
        ),
    )
    bars = synthetic_bars(3000, seed=2)
    res = train(spec, bars)
    rec = register(
        db, name, res.model, spec.feature_set, res.metrics, res.params, fingerprint(bars), who="bench"
    )
    promote(db, name, rec.version, Stage.production, "bench", "benchmark")
    return settings, db, name, create_api_key(db, name, ["trade"])


def _in_process(settings, db, name: str, flush_s: float, start: int, n: int = 3000) -> dict:
    from tradekit.services import open_cache
    from tradekit.serving.engine import DecisionEngine, ServingSpec

    symbols = tuple(f"{PREFIX}{i}" for i in range(SYMBOLS))
    spec = ServingSpec(model=name, symbols=symbols, flush_s=flush_s)
    engine = DecisionEngine(db, open_cache(settings), spec).start()
    bodies = [json.loads(b) for b in _payloads(start, n)]
    for body in bodies[: SYMBOLS * 2]:  # warm the LRU and the model
        engine.decide(body)
    t = []
    for body in bodies[SYMBOLS * 2 :]:
        t0 = time.perf_counter()
        engine.decide(body)
        t.append((time.perf_counter() - t0) * 1e3)
    engine.close()
    return dict(n=len(t), p50=float(np.percentile(t, 50)), p99=float(np.percentile(t, 99)))


def _uvicorn(args: argparse.Namespace) -> None:
    "The same app on plain uvicorn (what `--uvicorn PORT` runs in a child process)."
    import gc

    import uvicorn

    from tradekit.config import load_settings
    from tradekit.serving.http import create_app, open_serving

    app = create_app()
    app.state.serving = open_serving(load_settings())
    gc.freeze()
    uvicorn.run(app, host="127.0.0.1", port=args.uvicorn, log_level="warning", access_log=False)


def main(args: argparse.Namespace) -> None:
    from tradekit.services import free_port, wait_for_port
    from tradekit.serving.bento import running_service, service_env
    from tradekit.serving.engine import ServingSpec

    rates = [float(r) for r in args.rates.split(",")]
    settings, db, name, key = _setup()
    inproc = {
        flush: _in_process(settings, db, name, flush, start) for flush, start in [(0.2, 0), (0.0, 3000)]
    }
    spec = ServingSpec(model=name, symbols=tuple(f"{PREFIX}{i}" for i in range(SYMBOLS)))
    env = service_env(settings, spec)
    start, rows = 10_000, []  # bars after the in-process ones: every symbol's times keep increasing
    with running_service(env) as url:
        rows += [dict(server="bentoml", **r) for r in _drive(url, key, rates, args.seconds, start)]
    start += 50_000
    port = free_port()
    uv = subprocess.Popen([sys.executable, __file__, "--uvicorn", str(port)], env={**os.environ, **env})
    try:
        wait_for_port("127.0.0.1", port, timeout=60, alive=lambda: uv.poll() is None)
        rows += [
            dict(server="uvicorn", **r)
            for r in _drive(f"http://127.0.0.1:{port}", key, rates, args.seconds, start)
        ]
    finally:
        uv.terminate()
        uv.wait(10)
    print(f"\nin-process DecisionEngine.decide, one bar (target p99 <= {TARGET_INPROC_P99_MS:g} ms)")
    for flush, r in inproc.items():
        how = f"Redis write-behind, flush every {flush:g} s" if flush else "Redis write-through"
        print(f"  {how}: p50 {r['p50']:.3f} ms, p99 {r['p99']:.3f} ms ({r['n']} calls)")
    print(
        f"\nPOST /decide over loopback, {args.seconds:g} s per row (target: p99 <= {TARGET_HTTP_P99_MS:g} ms)"
    )
    print(
        "| server | load | requests | ok | achieved req/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        rps = r.get("rps", r["n"] / args.seconds)
        cells = [r["server"], r["mode"], r["n"], r["ok"], f"{rps:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}"]
        print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="100,200,300,500")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--drive", help=argparse.SUPPRESS)
    p.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--uvicorn", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    _driver(a) if a.drive else _uvicorn(a) if a.uvicorn else main(a)
