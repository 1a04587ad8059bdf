"""vdt-ai profile: CSV, Parquet and JSON lines, sent offline or printed."""

import json
from pathlib import Path

import datasketches
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from vdt_ai import ColumnKind, DataProfile
from vdt_ai.cli import main
from vdt_ai.spool import iter_events


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={}, catch_exceptions=False)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": [float(i) for i in range(100)],
            "city": ["paris", "lyon", None, "paris"] * 25,
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_profile_file_is_sent_offline(
    tmp_path: Path, frame: pd.DataFrame, suffix: str
) -> None:
    source = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(source)
    else:
        source.write_text(
            "\n".join(json.dumps(r) for r in frame.to_dict("records")) + "\n\n"
        )
    result = run("profile", str(source), "--dataset", "sales")
    assert result.exit_code == 0, result.output
    assert "profile of 100 rows, 2 columns" in result.output
    assert "kept in the spool" in result.output
    (event,) = iter_events(tmp_path / "data" / "vdt-ai" / "spool")
    assert isinstance(event, DataProfile) and event.dataset_name == "sales"
    amount, city = event.columns["amount"], event.columns["city"]
    assert (amount.kind, amount.count, amount.max) == (ColumnKind.NUMBER, 100, 99.0)
    assert (city.kind, city.count, city.null_count) == (ColumnKind.STRING, 75, 25)
    top = datasketches.frequent_strings_sketch.deserialize(city.frequent)
    assert top.get_estimate("paris") == 50


def test_print_shows_a_table_and_sends_nothing(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    source = tmp_path / "d.csv"
    frame.to_csv(source, index=False)
    result = run("profile", str(source), "--dataset", "sales", "--print")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "dataset sales: 100 rows, 2 columns"
    assert lines[1].split()[:6] == ["column", "kind", "count", "null", "%", "distinct"]
    amount = lines[2].split()
    assert amount[:5] == ["amount", "number", "100", "0.0", "~100"]
    assert amount[5] == "0" and amount[9] == "99"  # min ... max
    assert "paris (50)" in lines[3] and "25.0" in lines[3]
    assert not (tmp_path / "data" / "vdt-ai" / "spool").exists()
    only = run("profile", str(source), "--dataset", "s", "--print", "--column", "city")
    assert "1 columns" in only.output and "amount" not in only.output


def test_bad_files_fail_with_one_line(tmp_path: Path) -> None:
    text = tmp_path / "x.txt"
    text.write_text("a")
    result = run("profile", str(text), "--dataset", "d")
    assert (
        result.exit_code == 2 and "expected a .csv, .parquet, .jsonl" in result.output
    )
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    result = run("profile", str(bad), "--dataset", "d")
    assert result.exit_code == 1 and "line 2: not JSON" in result.output
    csv = tmp_path / "y.csv"
    csv.write_text("a\n1\n")
    result = run("profile", str(csv), "--dataset", "d", "--column", "zz")
    assert result.exit_code == 1 and "no such column(s): zz" in result.output
    assert "Traceback" not in result.output


def test_too_many_or_clashing_columns_point_to_the_cli_option(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text(
        ",".join(f"c{i}" for i in range(1_001)) + "\n" + "1," * 1_000 + "1\n"
    )
    result = run("profile", str(wide), "--dataset", "d")
    assert result.exit_code == 1, result.output
    assert "more than 1000; choose some with --column" in result.output
    long = "x" * 300
    clash = tmp_path / "clash.jsonl"
    clash.write_text(json.dumps({long + "a": 1, long + "b": 2}) + "\n")
    result = run("profile", str(clash), "--dataset", "d")
    assert result.exit_code == 1, result.output
    assert "rename one or choose some with --column" in result.output
    assert "columns=" not in result.output
