"""Data profiles: sketch two days of a table, merge them, compare quantiles.

Profiles two pandas DataFrames with ``vdt_ai.profiles.profile`` (Apache
DataSketches: KLL quantiles, HLL distinct counts, frequent items), merges them
as the platform would merge partitions or windows, logs both days and the
merge with ``log_data_profile`` (offline here: into the local spool), and
reads quantiles back from the serialized sketches. With ``--png PATH`` it
also draws one column's quantiles for each day (needs matplotlib)::

    python examples/profile_example.py --png docs/img/profile-quantiles.png

Needs ``pip install 'vdt-ai[profiles]'`` and pandas.
"""

import argparse
import warnings
from typing import Any, Dict, List

import datasketches
import numpy as np
import pandas as pd

from vdt_ai import DataProfile, OfflineModeWarning, VDTClient
from vdt_ai.profiles import profile

QUANTILES = [i / 100 for i in range(1, 100)]


def day(seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 100_000
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3 + shift, 0.8, n),
            "country": rng.choice(["fr", "de", "us", "jp"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "is_new": rng.random(n) < 0.2 + shift,
        }
    )


def quantiles(built: DataProfile, column: str) -> List[float]:
    sketch = built.columns[column].quantiles
    assert sketch is not None
    kll = datasketches.kll_doubles_sketch.deserialize(sketch)
    return [kll.get_quantile(q) for q in QUANTILES]


def draw(curves: Dict[str, List[float]], column: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for label, values in curves.items():
        axes.plot([q * 100 for q in QUANTILES], values, label=label)
    axes.set_xlabel("percentile")
    axes.set_ylabel(column)
    axes.set_yscale("log")
    axes.set_title(f"'{column}' quantiles from the profiles' KLL sketches")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--png", help="draw the 'amount' quantiles to this PNG")
    args = parser.parse_args()
    monday, tuesday = day(1, 0.0), day(2, 0.15)  # Tuesday drifts upwards
    first, second = profile(monday), profile(tuesday)
    both = first.merge(second)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineModeWarning)
        client = VDTClient()  # offline without brokers: kept in the spool
    for built in (first, second, both):
        client.log_data_profile("payments", built)
    client.close()
    amount = both.columns["amount"]
    print(
        f"rows {both.row_count}, amount: mean {amount.mean:.1f}, "
        f"min {amount.min:.2f}, max {amount.max:.1f}"
    )
    curves: Dict[str, Any] = {
        "monday": quantiles(first, "amount"),
        "tuesday": quantiles(second, "amount"),
        "both (merged)": quantiles(both, "amount"),
    }
    for name, values in curves.items():
        print(
            f"{name:>14}: p50 {values[49]:7.1f}  p90 {values[89]:7.1f}  "
            f"p99 {values[98]:7.1f}"
        )
    hll = datasketches.hll_sketch.deserialize(both.columns["country"].distinct)
    print(f"distinct countries ~{hll.get_estimate():.0f}")
    if args.png:
        draw(curves, "amount", args.png)


if __name__ == "__main__":
    main()
