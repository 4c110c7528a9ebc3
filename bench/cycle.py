"""Cost of the loop's model steps against the number of sites, and the demo's wall time.

Retrain: :class:`screener.surrogate.models.Surrogate` fitted on ``--train`` labelled rows (the
grouped-CV model choice and calibration included, as the daemon does it).  Score: featurise and
predict (mean, std) ``N`` site fingerprints for N = 10k, 100k, 1M in dask blocks
(:func:`screener.learning.predict_chunked`), as a cycle scores every site of a space.

The fingerprints are real: those of an EMT-labelled pool the project builds itself
(bench/emt_pool.py; ``--pool FILE`` reuses one), tiled up to N.  Real spaces repeat
fingerprints too (a fingerprint is a few element counts), which the featuriser's per-distinct-
fingerprint cache exploits; the number of distinct fingerprints is printed with each row.

Printed: seconds per step, rows per second, and the ratio of each N's time to the 10k time
divided by N/10k (1.0 = linear).  ``--demo`` also times ``screener demo`` in a fresh data dir.

    .venv/bin/python bench/cycle.py --pool /tmp/pool.extxyz [--sizes 10000,100000,1000000] [--demo]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def build_pool(path: Path, elements: str) -> None:
    from emt_pool import build_pool as build

    from screener.enumerate.seed import plan_seed, seed
    from screener.settings import use_settings
    from screener.store import open_store
    from screener.store.server import stopped_after

    with tempfile.TemporaryDirectory(prefix="bench-cycle-") as tmp:
        data_dir = Path(tmp) / "data"
        with stopped_after(data_dir), use_settings(data_dir=data_dir, dask_workers=0) as settings:
            with open_store(settings) as store:
                seed(plan_seed(elements, "CO,H", max_miller=1, settings=settings), store)
                counts = build(elements.replace(",", "-"), ["CO", "H"], path, processes=2)
    log(f"pool {path}: {counts}")


def time_demo() -> dict:
    screener = str(Path(sys.executable).with_name("screener"))
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        env = {**os.environ, "SCREENER_DATA_DIR": str(Path(tmp) / "data")}
        env.pop("SCREENER_MONGO_URI", None)
        started = time.perf_counter()
        done = subprocess.run([screener, "demo"], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        subprocess.run([screener, "db", "stop"], env=env, capture_output=True)
    if done.returncode != 0:
        log(done.stderr[-2000:])
    return {"seconds": round(seconds, 1), "returncode": done.returncode}


def main(argv: list[str] | None = None) -> int:
    from screener.learning import predict_chunked
    from screener.settings import load_settings
    from screener.surrogate.data import read_labelled
    from screener.surrogate.models import Surrogate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=Path("bench-cycle-pool.extxyz"))
    parser.add_argument("--elements", default="Cu,Pd,Au")
    parser.add_argument("--adsorbate", default="CO")
    parser.add_argument("--train", type=int, default=2000, help="labelled rows to fit on")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--demo", action="store_true", help="also time `screener demo`")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    if not args.pool.exists():
        build_pool(args.pool, args.elements)
    data = read_labelled(args.pool).select(args.adsorbate)
    n = len(data)
    rng = np.random.default_rng(0)
    order = rng.permutation(max(args.train, n)) % n
    rows = order[: args.train]
    fps = [data.fingerprints[i] for i in rows]
    # tiled rows get their own groups (copies of a slab are other slabs at this scale)
    groups = [f"{data.groups[i]}#{k // n}" for k, i in enumerate(rows)]
    pure = [data.pure[i] for i in rows]
    energies = data.energies[rows] + rng.normal(0, 0.02, len(rows))
    distinct = len({json.dumps(f, sort_keys=True) for f in data.fingerprints})

    started = time.perf_counter()
    surrogate = Surrogate(args.adsorbate).fit(fps, energies, groups, pure, seed=0)
    fit_s = time.perf_counter() - started
    log(f"retrain on {len(rows)} rows ({surrogate.info.get('model')}): {fit_s:.1f} s")

    settings = load_settings(dask_workers=os.cpu_count() or 1)
    results = {"pool": n, "distinct_fingerprints": distinct, "train_rows": len(rows)}
    results["retrain_s"] = round(fit_s, 2)
    results["score"] = []
    base = None
    for size in [int(s) for s in args.sizes.split(",")]:
        sites = [data.fingerprints[i] for i in rng.integers(0, n, size)]
        t0 = time.perf_counter()
        X = surrogate.features(sites)
        t1 = time.perf_counter()
        mean, std = predict_chunked(surrogate, X, settings)
        t2 = time.perf_counter()
        total = t2 - t0
        base = base or (total, size)
        row = {
            "sites": size,
            "features_s": round(t1 - t0, 2),
            "predict_s": round(t2 - t1, 2),
            "total_s": round(total, 2),
            "sites_per_s": round(size / total),
            "linearity": round((total / base[0]) / (size / base[1]), 2),
            "finite": bool(np.isfinite(mean).all() and np.isfinite(std).all()),
        }
        results["score"].append(row)
        log(
            f"score {size}: features {row['features_s']} s, predict {row['predict_s']} s, "
            f"{row['sites_per_s']} sites/s, time ratio / size ratio vs 10k {row['linearity']}"
        )
        del sites, X, mean, std
    if args.demo:
        results["demo"] = time_demo()
        log(f"screener demo: {results['demo']}")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(
            f"retrain ({len(rows)} rows): {fit_s:.1f} s; pool {n} rows, {distinct} distinct "
            "fingerprints"
        )
        for row in results["score"]:
            print(
                f"score {row['sites']:>8} sites: {row['total_s']:7.2f} s "
                f"({row['sites_per_s']} sites/s; ratio to 10k per site {row['linearity']})"
            )
        if "demo" in results:
            print(f"screener demo wall time: {results['demo']['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
