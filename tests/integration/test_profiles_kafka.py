"""Data profiles through a real broker: every sketch's bytes, consumed from
Kafka, are read back by Apache DataSketches."""

from pathlib import Path

import datasketches
import numpy as np
import pandas as pd
import pytest

from vdt_ai import ColumnKind, DataProfile, VDTClient, decode
from vdt_ai.profiles import profile

from .conftest import BOOTSTRAP, consume

pytestmark = pytest.mark.integration


def test_profile_sketches_decode_after_kafka(prefix: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 50_000
    df = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n),
            "country": rng.choice(["fr", "de", "us", "jp"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": rng.random(n) > 0.5,
            "user": rng.integers(0, 5_000, n),
        }
    )
    client = VDTClient(
        bootstrap_servers=BOOTSTRAP,
        topic_prefix=prefix,
        handle_sigterm=False,
        spool_dir=tmp_path / "spool",
    )
    whole = client.log_data_profile("payments", df)
    halves = profile(df.iloc[: n // 2]).merge(profile(df.iloc[n // 2 :]))
    merged = client.log_data_profile("payments", halves)
    assert client.flush(30) == 0
    client.close()
    seen = consume([f"{prefix}.data_profiles"], {str(whole), str(merged)})
    for event_id in (whole, merged):
        (record,) = seen[str(event_id)]
        assert (record.topic, record.key) == (f"{prefix}.data_profiles", b"payments")
        event = decode(record.value)
        assert isinstance(event, DataProfile) and event.row_count == n
        amount = event.columns["amount"]
        kll = datasketches.kll_doubles_sketch.deserialize(amount.quantiles)
        assert kll.n == n and kll.get_min_value() == df.amount.min()
        true_median = float(np.median(df.amount))
        assert abs(kll.get_rank(true_median) - 0.5) <= 0.02
        for name, column in event.columns.items():
            hll = datasketches.hll_sketch.deserialize(column.distinct)
            exact = df[name].nunique()
            assert abs(hll.get_estimate() - exact) <= 0.05 * exact + 1, name
        country = event.columns["country"]
        assert country.kind is ColumnKind.STRING
        top = datasketches.frequent_strings_sketch.deserialize(country.frequent)
        assert top.get_estimate("fr") == (df.country == "fr").sum()
        assert top.total_weight == n
        flag = datasketches.frequent_strings_sketch.deserialize(
            event.columns["flag"].frequent
        )
        assert flag.get_estimate("true") == df.flag.sum()
