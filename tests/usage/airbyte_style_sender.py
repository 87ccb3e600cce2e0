"""A sender in the style of Airbyte's Planhat destination, run as a script by the tests.

Reads records as JSON lines on stdin (``{"stream": "activities" | "metrics", "data": {…}}``),
buffers each stream and posts full batches (default 10,000 records): activities to
``/analytics/bulk/<tenant token>``, metrics to ``/dimensiondata`` with ``Authorization:
Bearer <tenant token>``, as that destination does. Prints one JSON summary: records and
requests sent per stream, and Planhat's ``processed`` / error counts added up.

    python tests/usage/airbyte_style_sender.py --base-url http://127.0.0.1:8000 --token T < records.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys

import requests

ENDPOINTS = {"activities": "/analytics/bulk/{token}", "metrics": "/dimensiondata"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()

    session = requests.Session()
    buffers: dict[str, list[dict]] = {stream: [] for stream in ENDPOINTS}
    summary = {
        stream: {"records": 0, "requests": 0, "processed": 0, "errors": 0} for stream in ENDPOINTS
    }

    def flush(stream: str) -> None:
        records = buffers[stream]
        if not records:
            return
        url = args.base_url.rstrip("/") + ENDPOINTS[stream].format(token=args.token)
        headers = {"Authorization": f"Bearer {args.token}"} if stream == "metrics" else {}
        answer = session.post(url, json=records, headers=headers, timeout=120)
        answer.raise_for_status()
        body = answer.json()
        totals = summary[stream]
        totals["records"] += len(records)
        totals["requests"] += 1
        totals["processed"] += body["processed"]
        totals["errors"] += body["errors_count"]
        buffers[stream] = []

    for line in sys.stdin:
        if not line.strip():
            continue
        record = json.loads(line)
        buffers[record["stream"]].append(record["data"])
        if len(buffers[record["stream"]]) >= args.batch_size:
            flush(record["stream"])
    for stream in ENDPOINTS:
        flush(stream)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
