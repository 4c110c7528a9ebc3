"""Benchmark of the surrogate and the acquisition on a labelled pool: the DFT dev set, or an
EMT-labelled pool the project builds itself.

    .venv/bin/python bench/surrogate.py --pool ../shared/data/dft_agirpdptru_oh_o.extxyz.gz \
        --group-by slab --adsorbates OH,O --keep-flagged --target 0.1 --hit-fraction 0.08 \
        --batch 20 --init 20 --repeats 1 --fast --json             # the DFT dev set
    .venv/bin/python bench/surrogate.py [--pool FILE] [--elements Ag,Au,Cu,Pd,Pt] [--max-miller 1]
                                        [--json]                   # an EMT pool (machinery only)

1. Pool: ``--pool FILE`` is reused when it exists; otherwise (or without ``--pool``) the elements
   are seeded into a throwaway store and every CO and H site is labelled with EMT by
   bench/emt_pool.py's ``build_pool`` (written to FILE, or a temporary file).
   Rows with anomaly flags (adsorbate migrated or dissociated, surface reconstructed: EMT's C-O
   bond breaks on many sites) are left out, as the loop leaves them out of training;
   ``--keep-flagged`` keeps them.  The pool records where each relaxation started
   (``initial_binding``), so every row is known by the fingerprint of its site before
   relaxation, as the loop knows its sites (a file without it: by the relaxed structure, which
   flatters the backtest).
2. Per adsorbate: grouped 5-fold CV (groups = slabs, by slab identity) of the whole
   :meth:`Surrogate.fit` procedure (:func:`evaluate`) against a plain random forest on per-shell
   element counts (:func:`baseline_evaluate`), on the same folds: MAE, RMSE, coverage of the
   calibrated 90% intervals, the ratio of the MAEs; the same CV for each feature set; the CPU
   time of one ``Surrogate.fit`` on the pool and on ~10k rows (the pool tiled, each copy its own
   groups, second-shell counts jittered by 0-3 so that most fingerprints are distinct, labels +
   0.05 eV noise).
3. Per adsorbate, a backtest.  With ``--target T`` (in the file's energy scale; the dev set's
   dE is relative to Pt(111), and the oxygen-reduction optimum is about 0.1 eV weaker), the
   window is the narrowest around T that holds ``--hit-fraction`` of the rows.  Without it, a
   rare-hit pool: the window has the product's half-width
   (0.1 eV) and the target is placed on the strong-binding side of the median where the window
   holds the share of the pool nearest ``--hit-fraction`` (6%); strategies target-window,
   random and gaussian-target (Tran & Ulissi) run from the same initial points per repeat,
   budget = the whole pool, each repeat stopping once 90% of the hits are found; the result is
   calls_to_find_90pct(random) / calls_to_find_90pct(target-window) (and the analytic
   expectation for random sampling, need * (N + 1) / (hits + 1)); target-window is also run
   without spreading each batch over surfaces (``target-window/no-spread``).  The same at the
   domain target (+/- 0.1 eV) when it has hits.  For scale, ``static_cv_ranking``: the calls
   needed when every site is ranked once by the window probability of its grouped-CV
   prediction (a model trained on 80% of the pool): what the model's accuracy allows without
   any learning during the campaign.

It prints what it measured and asserts nothing.  EMT numbers test the machinery, they are not DFT.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def build_emt_pool(elements: str, max_miller: int, out: Path, processes: int = 1) -> dict:
    """Seed ``elements`` into a throwaway store and label every CO/H site with EMT into ``out``."""
    from emt_pool import build_pool

    from screener.enumerate.seed import plan_seed, seed
    from screener.settings import use_settings
    from screener.store import open_store
    from screener.store.server import stopped_after

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-surrogate-") as tmp:
        data_dir = Path(tmp) / "data"
        with stopped_after(data_dir), use_settings(data_dir=data_dir, dask_workers=0) as settings:
            with open_store(settings) as store:
                plan = plan_seed(elements, "CO,H", max_miller=max_miller, settings=settings)
                seed(plan, store)
                seeded = time.perf_counter() - start
                log(f"seeded {plan.space} in {seeded:.0f} s; labelling with EMT ...")
                done = [0]

                def progress(n_rows: int) -> None:
                    done[0] += 1
                    if done[0] % 10 == 0:
                        log(f"  {done[0]} surfaces labelled ({time.perf_counter() - start:.0f} s)")

                counts = build_pool(
                    plan.space, ["CO", "H"], out, processes=processes, on_surface=progress
                )
    counts.update(seed_s=round(seeded, 1), total_s=round(time.perf_counter() - start, 1))
    return counts


def rare_window(energies: np.ndarray, fraction: float, window: float) -> tuple[float, float]:
    """Target (strong-binding side of the median) where +/- ``window`` holds ~``fraction``."""
    energies = np.sort(np.asarray(energies, dtype=float))
    median = float(np.median(energies))
    targets = np.arange(energies[0], median, 0.005)
    shares = [np.mean(np.abs(energies - t) <= window) for t in targets]
    best = int(np.argmin(np.abs(np.array(shares) - fraction)))
    return float(targets[best]), float(window)


def window_holding(energies: np.ndarray, target: float, fraction: float) -> float:
    """The half-width (eV) of the narrowest window around ``target`` that holds ``fraction`` of
    the rows (the distance of the row that completes that share)."""
    distance = np.sort(np.abs(np.asarray(energies, dtype=float) - target))
    need = max(1, math.ceil(fraction * len(distance)))
    return float(distance[need - 1])


def static_ranking_calls(
    energies: np.ndarray, mean: np.ndarray, std: np.ndarray, target: float, window: float
) -> int:
    """Calls to 90% of the hits ranking the pool once by the window probabilities of its
    grouped-CV (out-of-fold) predictions."""
    from screener.surrogate.acquisition import window_probability

    hit = np.abs(np.asarray(energies, dtype=float) - target) <= window
    need = math.ceil(0.9 * hit.sum())
    order = np.argsort(-window_probability(mean, std, target - window, target + window))
    return int(np.searchsorted(np.cumsum(hit[order]), need) + 1)


def _jittered(fp: dict, rng) -> dict:
    """A copy of a fingerprint with its outer counts moved by 0-3, so that copies of a pool
    are mostly distinct fingerprints (the featurizer caches distinct ones)."""
    out = dict(fp)
    out["second"] = [e[:3] + [e[3] + int(rng.integers(0, 4))] for e in fp["second"]]
    if fp.get("zones"):
        zones = {z: dict(c) for z, c in fp["zones"].items()}
        for element in zones.get("ring2") or {}:
            zones["ring2"][element] += int(rng.integers(0, 4))
        out["zones"] = zones
    return out


def fit_times(data, seed: int, rows: int = 5000) -> dict:
    """CPU time of one Surrogate.fit (the loop's: inner CV, model choice, calibration, refit)
    on the pool and on ``rows`` rows (the pool tiled, each copy its own groups and jittered
    fingerprints, labels + 0.05 eV noise)."""
    from screener.surrogate.models import Surrogate

    ads = data.adsorbates[0]
    start = time.process_time()
    s = Surrogate(ads).fit(data.fingerprints, data.energies, data.groups, data.pure, seed=seed)
    pool_cpu = time.process_time() - start
    copies = max(1, math.ceil(rows / len(data)))
    rng = np.random.default_rng(seed)
    fps = [fp if k == 0 else _jittered(fp, rng) for k in range(copies) for fp in data.fingerprints]
    energies = np.tile(data.energies, copies) + 0.05 * rng.standard_normal(len(data) * copies)
    groups = [f"{g}#{k}" for k in range(copies) for g in data.groups]
    pure = data.pure * copies
    fps, energies, groups, pure = fps[:rows], energies[:rows], groups[:rows], pure[:rows]
    start = time.process_time()
    big = Surrogate(ads).fit(fps, energies, groups, pure, seed=seed)
    big_cpu = time.process_time() - start
    return {
        "pool_rows": len(data),
        "pool_fit_cpu_s": round(pool_cpu, 2),
        "pool_model": s.info["model"],
        "pool_inner_cv_mae": {k: round(v, 4) for k, v in s.info["candidates"].items()},
        "rows_tiled": len(fps),
        "distinct_fingerprints_tiled": len({json.dumps(f, sort_keys=True) for f in fps}),
        "fit_tiled_cpu_s": round(big_cpu, 2),
        "fit_tiled_model": big.info["model"],
    }


def _surrogate(args) -> dict:
    """Keyword arguments of the backtest's Surrogate: the loop's fit unless --fast."""
    from screener.surrogate.backtest import FAST_SURROGATE

    return dict(FAST_SURROGATE) if args.fast else {}


def run_backtest(data, target, window, args) -> dict:
    from screener.surrogate.backtest import backtest

    common = dict(
        strategy="target-window",
        target=target,
        window=window,
        budget=len(data),
        batch=args.batch,
        init=args.init,
        repeats=args.repeats,
        seed=args.seed,
        stop_at=0.9,
        surrogate=_surrogate(args),
    )
    result = backtest(data, compare=tuple(args.compare.split(",")), mae_every=10, **common)
    n, hits = result["pool"], result["hits"]
    need = math.ceil(0.9 * hits)
    calls = {k: v["calls_to_find_90pct"] for k, v in result["strategies"].items()}
    out = {
        "target": round(target, 4),
        "window": round(window, 4),
        "pool": n,
        "hits": hits,
        "hit_fraction": round(hits / n, 4),
        "rows_known_by": result["rows_known_by"],
        "calls_to_find_90pct": calls,
        "calls_per_repeat": {k: v["calls_per_repeat"] for k, v in result["strategies"].items()},
        "random_expected": round(need * (n + 1) / (hits + 1), 1),
    }
    if args.spread_compare:  # the same without spreading batches over surfaces
        plain = backtest(data, compare=(), spread=False, **common)["strategies"]["target-window"]
        calls["target-window/no-spread"] = plain["calls_to_find_90pct"]
        out["calls_per_repeat"]["target-window/no-spread"] = plain["calls_per_repeat"]
    tw, rnd = calls.get("target-window"), calls.get("random")
    out["ratio_random_over_target_window"] = round(rnd / tw, 2) if tw and rnd else None
    out["ratio_expected_random_over_target_window"] = (
        round(out["random_expected"] / tw, 2) if tw else None
    )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=Path, help="labelled extxyz/db (built here if missing)")
    parser.add_argument("--elements", default="Ag,Au,Cu,Pd,Pt")
    parser.add_argument("--max-miller", type=int, default=1)
    parser.add_argument("--processes", type=int, default=1, help="EMT labelling processes")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-flagged", action="store_true", help="keep anomalous rows")
    parser.add_argument("--hit-fraction", type=float, default=0.06)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--init", type=int, default=10)
    parser.add_argument("--compare", default="random,gaussian-target")
    parser.add_argument("--adsorbates", default="CO,H")
    parser.add_argument(
        "--no-spread-compare",
        dest="spread_compare",
        action="store_false",
        help="skip the target-window run without spreading batches over surfaces",
    )
    parser.add_argument(
        "--fast", action="store_true", help="backtest with the cheap surrogate (FAST_SURROGATE)"
    )
    parser.add_argument(
        "--group-by", help="info key of the CV groups (the dev set: slab); default: slab identity"
    )
    parser.add_argument(
        "--target",
        type=float,
        help="backtest target in the file's energy scale; the window is the narrowest around it "
        "that holds --hit-fraction of the rows (the domain-target backtest is then skipped)",
    )
    parser.add_argument("--fit-rows", type=int, default=5000, help="rows of the tiled fit timing")
    parser.add_argument("--skip-backtest", action="store_true")
    parser.add_argument("--skip-features", action="store_true", help="skip the CV per feature set")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from screener.settings import load_settings
    from screener.surrogate.acquisition import DEFAULT_WINDOW
    from screener.surrogate.data import read_labelled
    from screener.surrogate.features import FEATURE_SETS
    from screener.surrogate.models import baseline_evaluate, evaluate

    report: dict = {}
    tmp = None
    pool_path = args.pool
    if pool_path is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-surrogate-pool-")
        pool_path = Path(tmp.name) / "pool.extxyz"
    if not pool_path.exists():
        report["elements"] = args.elements
        report["max_miller"] = args.max_miller
        report["build"] = build_emt_pool(
            args.elements, args.max_miller, pool_path, processes=args.processes
        )
        log("built", report["build"])
    if args.build_only:
        print(json.dumps(report))
        return 0
    start = time.perf_counter()
    data = read_labelled(pool_path, group_by=args.group_by)
    flagged = [i for i, info in enumerate(data.info) if json.loads(info.get("flags", "[]"))]
    if flagged and not args.keep_flagged:
        keep = sorted(set(range(len(data))) - set(flagged))
        data = data.take(keep)
    report["pool"] = {
        "file": str(pool_path),
        "rows": len(data),
        "groups": len(set(data.groups)),
        "read_s": round(time.perf_counter() - start, 1),
        "flagged_rows": len(flagged),
        "flagged_rows_dropped": bool(flagged) and not args.keep_flagged,
    }
    if data.info and all("surface" in i for i in data.info):
        pairs = {(g, i["surface"]) for g, i in zip(data.groups, data.info, strict=True)}
        report["pool"]["groups_match_surface_key"] = (
            len(pairs) == len(set(data.groups)) == len({i["surface"] for i in data.info})
        )
    report["adsorbates"] = {}
    for ads in args.adsorbates.split(","):
        sub = data.select(ads)
        entry: dict = {"rows": len(sub), "groups": len(set(sub.groups))}
        e = sub.energies
        entry["dE"] = {
            "min": round(float(e.min()), 3),
            "median": round(float(np.median(e)), 3),
            "max": round(float(e.max()), 3),
        }
        log(f"{ads}: {len(sub)} rows, {entry['groups']} slabs; CV ...")
        t0 = time.perf_counter()
        ours = evaluate(sub, folds=args.folds, seed=args.seed, out_of_fold=True)
        ours["wall_s"] = round(time.perf_counter() - t0, 1)
        predicted = ours.pop("out_of_fold")
        base = baseline_evaluate(sub, folds=args.folds, seed=args.seed)
        entry["cv"] = {"ours": ours, "baseline": base, "mae_ratio_baseline_over_ours": None}
        entry["cv"]["mae_ratio_baseline_over_ours"] = round(base["mae"] / ours["mae"], 3)
        if not args.skip_features:
            entry["feature_sets"] = {}
            for fs in FEATURE_SETS:
                r = (
                    ours
                    if fs == ours["feature_set"]
                    else evaluate(sub, folds=args.folds, seed=args.seed, feature_set=fs)
                )
                entry["feature_sets"][fs] = {
                    k: r[k] for k in ("mae", "rmse", "coverage90", "model")
                }
        log(f"{ads}: fit times ...")
        entry["fit"] = fit_times(sub, args.seed, args.fit_rows)
        if not args.skip_backtest:
            if args.target is not None:
                target = args.target
                window = window_holding(e, target, args.hit_fraction)
            else:
                target, window = rare_window(e, args.hit_fraction, DEFAULT_WINDOW)
            log(f"{ads}: backtest at {target:.3f} +/- {window:.3f} eV ...")
            entry["backtest_rare"] = run_backtest(sub, target, window, args)
            if args.fast:  # the backtest's cheap surrogate, for the same CV
                kwargs = {"folds": args.folds, "seed": args.seed, "out_of_fold": True}
                predicted = evaluate(sub, **kwargs, **_surrogate(args))["out_of_fold"]
            entry["backtest_rare"]["static_cv_ranking_calls"] = static_ranking_calls(
                e, predicted["mean"], predicted["std"], target, window
            )
            if args.target is not None or sub.reference is not None:
                # a pool relative to another state (info 'reference') has no domain target
                report["adsorbates"][ads] = entry
                continue
            goal = load_settings().target_window(ads)
            domain, width = goal.target, goal.window
            domain_hits = int(np.sum(np.abs(e - domain) <= width))
            if domain_hits:
                log(f"{ads}: backtest at the domain target {domain} ...")
                entry["backtest_domain"] = run_backtest(sub, domain, width, args)
            else:
                entry["backtest_domain"] = {"target": domain, "window": width, "hits": 0}
        report["adsorbates"][ads] = entry
    if tmp is not None:
        tmp.cleanup()
    if args.json:
        print(json.dumps(report, indent=1, default=str))
        return 0
    print_report(report)
    return 0


def _f(x, nd=3):
    return "-" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def print_report(report: dict) -> None:
    p = report["pool"]
    print(f"pool {p['file']}: {p['rows']} rows, {p['groups']} slabs (read in {p['read_s']} s)")
    if p.get("flagged_rows"):
        print(f"rows with anomaly flags: {p['flagged_rows']} "
              + ("(left out)" if p["flagged_rows_dropped"] else "(kept)"))  # fmt: skip
    if "build" in report:
        print(f"built: {report['build']}")
    for ads, entry in report["adsorbates"].items():
        cv = entry["cv"]
        ours, base = cv["ours"], cv["baseline"]
        print(f"\n== {ads}: {entry['rows']} rows on {entry['groups']} slabs, dE {entry['dE']}")
        print(
            f"grouped {ours['folds']}-fold CV  ours: MAE {_f(ours['mae'])}  RMSE "
            f"{_f(ours['rmse'])}  coverage90 {_f(ours['coverage90'], 3)}  "
            f"(model {ours['model']}, folds chose {ours['fold_models']}, {ours['wall_s']} s)"
        )
        print(f"                     baseline RF on counts: MAE {_f(base['mae'])}  RMSE "
              f"{_f(base['rmse'])}")  # fmt: skip
        print(f"ratio MAE baseline/ours: {cv['mae_ratio_baseline_over_ours']}")
        for fs, r in entry.get("feature_sets", {}).items():
            print(
                f"  feature set {fs:9s} MAE {_f(r['mae'])}  RMSE {_f(r['rmse'])}  "
                f"coverage90 {_f(r['coverage90'])}  ({r['model']})"
            )
        fit = entry["fit"]
        print(
            f"Surrogate.fit CPU: {fit['pool_fit_cpu_s']} s on {fit['pool_rows']} rows, "
            f"{fit['fit_tiled_cpu_s']} s on {fit['rows_tiled']} rows "
            f"({fit['distinct_fingerprints_tiled']} distinct fingerprints, "
            f"{fit['fit_tiled_model']})"
        )
        for key, label in (("backtest_rare", "rare-hit"), ("backtest_domain", "domain-target")):
            b = entry.get(key)
            if not b:
                continue
            if not b.get("hits"):
                print(f"backtest {label}: no pool row within {b['window']} eV of {b['target']}")
                continue
            print(
                f"backtest {label}: target {b['target']} +/- {b['window']} eV"
                + f": {b['hits']} hits / {b['pool']} ({100 * b['hit_fraction']:.1f}%), rows "
                + f"known by their {b.get('rows_known_by', '?')}"
            )
            for name, calls in b["calls_to_find_90pct"].items():
                print(f"    calls to 90% of hits  {name:16s} {_f(calls)}  "
                      f"per repeat {b['calls_per_repeat'][name]}")  # fmt: skip
            print(
                f"    random expected {b['random_expected']};  ratio random/target-window "
                f"{_f(b['ratio_random_over_target_window'], 2)} (simulated), "
                f"{_f(b['ratio_expected_random_over_target_window'], 2)} (expected random)"
            )
            if "static_cv_ranking_calls" in b:
                static = b["static_cv_ranking_calls"]
                ratio = b["random_expected"] / static
                print(f"    static ranking by grouped-CV predictions: {static} calls "
                      f"(ratio {ratio:.2f} against expected random)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
