"""Draws table.py's rows as one chart: the SDK's cost on each path as a
multiple of the floor measured beside it (1 = as cheap as the floor), with the
target of issue 12 for each path.

Used by ``python table.py --chart perf.png``; needs matplotlib (the ``bench``
extra).
"""

from typing import Dict, Tuple


def draw(costs: Dict[str, Tuple[float, float]], path: str, title: str) -> None:
    """Writes a horizontal bar chart of ``costs`` (label -> (cost, target)) to
    the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    labels = list(costs)
    values = [costs[label][0] for label in labels]
    targets = [costs[label][1] for label in labels]
    figure, axes = plt.subplots(figsize=(8, 0.55 * len(labels) + 1.4))
    rows = range(len(labels))
    colours = ["#2a9d8f" if v <= t else "#e76f51" for v, t in zip(values, targets)]
    axes.barh(rows, values, color=colours, height=0.6, label="SDK / floor")
    axes.scatter(
        targets, rows, marker="|", s=400, color="black", zorder=3, label="target"
    )
    axes.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    for row, value in zip(rows, values):
        axes.text(value, row, f" {value:.2f}x", va="center", fontsize=9)
    axes.set_yticks(list(rows), labels)
    axes.invert_yaxis()
    axes.set_xlabel("cost as a multiple of the floor measured in the same run")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
