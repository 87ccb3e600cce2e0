"""Run every benchmark module, write JSON results and print a short table.

Each module in ``bench/`` named in ``SUITES`` exposes ``run(args) -> list[dict]``; a result
dict has ``name``, ``value``, ``unit`` and optionally ``baseline``, ``ratio``, ``target``
and ``ok``. Usage: ``python -m bench [--only ingest,push] [--quick]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

SUITES = ["ingest", "processing", "push", "trends", "health"]
RESULTS_DIR = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", default="", help="comma-separated suites: " + ",".join(SUITES))
    parser.add_argument("--quick", action="store_true", help="smaller data, for a smoke run")
    args = parser.parse_args()
    chosen = [s for s in SUITES if not args.only or s in args.only.split(",")]
    results: list[dict] = []
    for suite in chosen:
        try:
            module = importlib.import_module(f"bench.{suite}")
        except ModuleNotFoundError:
            print(f"[bench] suite {suite!r} not present, skipped", file=sys.stderr)
            continue
        started = time.time()
        for row in module.run(args):
            row.setdefault("suite", suite)
            results.append(row)
        print(f"[bench] {suite} done in {time.time() - started:.0f}s", file=sys.stderr)
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    meta = {"python": platform.python_version(), "machine": platform.machine()}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(_table(results))
    print(f"\nJSON: {out}")
    return 0 if all(r.get("ok", True) for r in results) else 1


def _table(rows: list[dict]) -> str:
    header = (
        f"{'suite':<11} {'measure':<46} {'value':>12} {'unit':<10} {'ratio':>6} {'target':<14} ok"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if isinstance(r.get("ratio"), (int, float)) else ""
        ok = {True: "yes", False: "NO"}.get(r.get("ok"), "")
        lines.append(
            f"{r['suite']:<11} {r['name']:<46} {r['value']:>12,.1f} {r['unit']:<10} "
            f"{ratio:>6} {r.get('target', '')!s:<14} {ok}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
