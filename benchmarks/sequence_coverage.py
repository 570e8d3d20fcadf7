"""Coverage of the gate's confidence sequence over eight looks, against a plain 95%
interval looked at as often: the share of runs whose bounds *ever* exclude the true mean.

Gains are drawn i.i.d. from three shapes: normal, rare binary (10% ones) and skewed (a
10% chance of an exponential value with mean 50, times an importance weight of 1, 3 or
10, minus 20: like a DR gain term). The first look is at ``--first`` decisions, then
every ``--first`` more; the sequence is tuned to be tightest at four looks' worth.

Usage: ``python benchmarks/sequence_coverage.py [--runs 2000] [--first 500 1000 2000]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from nba.sequential import running_sequence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--first", type=int, nargs="+", default=[500, 1_000, 2_000])
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    def skewed(n: int) -> np.ndarray:
        accepted = rng.random(n) < 0.1
        weight = rng.choice([1.0, 3.0, 10.0], size=n, p=[0.7, 0.2, 0.1])
        return accepted * weight * rng.exponential(50, size=n) - 20

    shapes: dict[str, tuple[Callable[[int], np.ndarray], float]] = {
        "normal": (lambda n: rng.normal(0.0, 1.0, n), 0.0),
        "rare binary": (lambda n: np.asarray(rng.random(n) < 0.1, dtype=float), 0.1),
        "skewed": (skewed, 0.1 * (0.7 + 0.6 + 1.0) * 50 - 20),
    }
    print("shape        first look  runs  sequence ever missed  fixed 95% ever missed")
    for name, (draw, mean) in shapes.items():
        for first in args.first:
            looks = [first * k for k in range(1, 9)]
            seq = fixed = 0
            for _ in range(args.runs):
                x = draw(looks[-1])
                cs = running_sequence(x, looks, 0.05, 4 * first)
                seq += any(c.low > mean or c.high < mean for c in cs)
                fixed += any(
                    abs(x[:n].mean() - mean) > 1.96 * x[:n].std(ddof=1) / np.sqrt(n) for n in looks
                )
            print(
                f"{name:<12} {first:>10,}  {args.runs:>4}  {seq / args.runs:>20.1%}  "
                f"{fixed / args.runs:>21.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
