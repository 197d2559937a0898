"""In-process CPU per review, per kind: the number each optimisation step is judged by.

``python -m benchmarks.webhook.inprocess`` (a few seconds). Times what the server does for one
review besides HTTP and TLS (``admission.parse_review``, ``decide`` and encoding the answer) on
one variant of each object of the benchmark mix, best of ``--repeat`` rounds of ``--loops``
reviews on ``time.process_time``, so another job on the machine inflates no number.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from benchmarks.webhook import workload
from meshguard.registry import default_registry
from meshguard.webhook import admission


def per_review_us(body: bytes, loops: int, repeat: int) -> float:
    registry = default_registry()
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        for _ in range(loops):
            review = admission.parse_review(body)
            admission.encode_response(review, admission.decide(review, registry))
        best = min(best, time.process_time() - began)
    return best * 1e6 / loops


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.webhook.inprocess")
    parser.add_argument("--loops", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    for obj in workload.mix(1):
        body = workload.review(obj, "uid-1")
        print(f"{obj['kind']:<20} {per_review_us(body, args.loops, args.repeat):7.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
