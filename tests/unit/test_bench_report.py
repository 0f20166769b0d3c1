"""The benchmark's table building, run on made-up figures so that it cannot rot unnoticed.

No test here times anything: `make bench` takes the measurements.
"""

from __future__ import annotations

import pytest
from bench.report import (
    BenchResults,
    ColdResult,
    ImportTime,
    PackageSize,
    RequestCounts,
    WarmResult,
    build_report,
    evaluate_goals,
    parse_import_times,
    render_table,
)

IMPORTTIME_OUTPUT = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |     typing_extensions
import time:       300 |        400 |   pydantic.main
import time:        50 |        450 | pydantic
import time:        20 |         20 |   otp_check.errors
import time:        10 |         10 |     pydantic.fields
import time:        40 |         50 |   otp_check.models
import time:        30 |        100 | otp_check
"""


def _results(**changes: object) -> BenchResults:
    results = BenchResults(
        warm=WarmResult(
            handler_us=1200, paynet_floor_us=400, full_floor_us=1000, update_items=4, rounds=3
        ),
        cold=ColdResult(
            phases_ms={"imports": 300.0, "secret fetch": 20.0},
            total_ms=400.0,
            boto3_floor_ms=200.0,
            runs=2,
        ),
        requests=RequestCounts(invocations=1000, secret_fetches=1, paynet_connections=1),
        imports=[ImportTime("pydantic", 360, 450), ImportTime("otp_check", 90, 100)],
        package=PackageSize(12_000_000),
        machine={"cores": "2"},
    )
    for name, value in changes.items():
        setattr(results, name, value)
    return results


def test_render_table_pads_columns() -> None:
    table = render_table(["a", "long header"], [["value", "x"]])

    assert table.splitlines() == [
        "| a     | long header |",
        "|-------|-------------|",
        "| value | x           |",
    ]


def test_render_table_rejects_short_row() -> None:
    with pytest.raises(ValueError, match="1 cells, not 2"):
        render_table(["a", "b"], [["only one"]])


def test_import_times_sum_by_package() -> None:
    by_package = {item.package: item for item in parse_import_times(IMPORTTIME_OUTPUT)}

    assert set(by_package) == {"typing_extensions", "pydantic", "otp_check"}
    assert by_package["pydantic"].self_us == 360
    # pydantic.fields is nested inside otp_check, so its outermost imports count only.
    assert by_package["pydantic"].cumulative_us == 460
    assert by_package["otp_check"].self_us == 90
    assert by_package["otp_check"].cumulative_us == 100
    assert by_package["typing_extensions"].cumulative_us == 100


def test_goals_judge_warm_on_full_floor() -> None:
    goals = {goal.name: goal for goal in evaluate_goals(_results())}

    warm = goals["warm invocation vs POST + UpdateItem floor"]
    assert warm.measured == "1.20x"
    assert warm.met is True
    cold = goals["cold start vs boto3-only interpreter"]
    assert cold.measured == "2.00x"
    assert cold.met is False


def test_goals_flag_bundled_boto3() -> None:
    results = _results(package=PackageSize(12_000_000, ("botocore",)))

    package = evaluate_goals(results)[-1]

    assert package.met is False
    assert "botocore" in package.measured


def test_goals_without_build_are_not_measured() -> None:
    results = _results(package=PackageSize(None, note="no sam build output"))

    package = evaluate_goals(results)[-1]

    assert package.met is None
    assert package.measured == "no sam build output"


def _rows(report: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in report.splitlines()
        if line.startswith("| ")
    ]


def test_report_contains_every_section() -> None:
    report = build_report(_results())
    rows = _rows(report)

    assert "Machine: cores 2" in report
    assert ["bare urllib3 POST to the sandbox", "400", "3.00x (Paynet only)"] in rows
    assert ["bare POST + 4 bare UpdateItem", "1000", "1.20x (goal)"] in rows
    assert ["total: process start to first response", "400"] in rows
    assert ["pydantic", "0.4", "0.5"] in rows
    assert ["Secrets Manager calls per 1,000 invocations", "1", "1", "met"] in rows
    assert ["cold start vs boto3-only interpreter", "2.00x", "<= 1.5x", "MISSED"] in rows
