"""Draws table.py's rows as one chart: the SDK's cost on each path as a
multiple of the floor measured beside it (1 = as cheap as the floor), with the
target of issue 12 for each path, and the caller cost of the peers measured
beside the same floor (no target; log scale when they are far off).

Used by ``python table.py --chart perf.png``; needs matplotlib (the ``bench``
extra).
"""

from typing import Dict, List, Optional, Tuple


def draw(
    costs: Dict[str, Tuple[float, Optional[float]]], path: str, title: str
) -> None:
    """Writes a horizontal bar chart of ``costs`` (label -> (cost, target)) to
    the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    labels = list(costs)
    values = [costs[label][0] for label in labels]
    targets = [costs[label][1] for label in labels]
    figure, axes = plt.subplots(figsize=(8.5, 0.55 * len(labels) + 1.9))
    rows = range(len(labels))
    sdk = [row for row, t in zip(rows, targets) if t is not None]
    peers = [row for row, t in zip(rows, targets) if t is None]
    axes.barh(
        sdk,
        [values[row] for row in sdk],
        color=["#2a9d8f" if values[r] <= (targets[r] or 0) else "#e76f51" for r in sdk],
        height=0.6,
        label="SDK / floor (green: target met)",
    )
    marks: List[float] = [t for t in targets if t is not None]
    axes.scatter(
        marks,
        sdk,
        marker="|",
        s=400,
        color="black",
        zorder=3,
        label="target",
    )
    if peers:
        axes.barh(
            peers,
            [values[row] for row in peers],
            color="#9e9e9e",
            height=0.6,
            label="peer / the same floor (caller cost)",
        )
    if max(values) > 20:
        axes.set_xscale("log")
    axes.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    for row, value in zip(rows, values):
        axes.text(value, row, f" {value:.2f}x", va="center", fontsize=9)
    axes.set_yticks(list(rows), labels)
    axes.invert_yaxis()
    axes.set_xlabel("cost as a multiple of the floor measured in the same run")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
