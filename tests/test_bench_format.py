"""The bench result format and the collector that turns it into one table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evals" / "bench"))

import _collect
from _result import emit, median_range, parse


def test_emit_compares_value_with_target_in_the_direction_given(capsys):
    low = emit("latency", "median 40 us", value=40.0, target=50.0)
    high = emit("throughput", "900 /s", value=900.0, target=1000.0, better="higher")
    plain = emit("first decision", "3 ms", value=3.0)
    assert (low["pass"], high["pass"], plain["pass"]) == (True, False, None)
    lines = capsys.readouterr().out.splitlines()
    assert [parse(line) for line in lines] == [low, high, plain]
    assert low["ratio"] == 0.8


def test_parse_ignores_other_lines_and_malformed_results():
    assert parse("median 40 us") is None
    assert parse("BENCH {not json") is None
    assert parse('BENCH {"figure": "no goal"}') is None
    assert parse("BENCH " + json.dumps({"goal": "g", "figure": "f"})) == {"goal": "g", "figure": "f"}


def test_median_range_reports_median_and_extremes():
    assert median_range([3.0, 1.0, 2.0], unit=" ms") == "median 2.0 ms (1.0-3.0)"


def test_collector_runs_a_script_and_keeps_its_rows(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(_collect.__file__).parent)!r})\n"
        "from _result import emit\n"
        "print('a human line')\n"
        "emit('goal one', 'median 1 s', value=1.0, target=0.5)\n"
    )
    rows, code, _ = _collect.run(script, tmp_path)
    assert code == 0
    assert [(r["goal"], r["pass"], r["script"]) for r in rows] == [("goal one", False, "fake")]
    assert "a human line" in (tmp_path / "fake.log").read_text()
    text = _collect.table(rows, markdown=True)
    assert "| goal one | median 1 s | 2.00 | FAIL |" in text
