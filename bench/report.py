"""Results of the benchmark, its goals, and the tables that print them.

Nothing here measures or starts a process, so tests can run it on made-up figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

WARM_GOAL = 1.3
COLD_GOAL = 1.5
PACKAGE_GOAL_BYTES = 15 * 1000 * 1000


@dataclass(frozen=True)
class WarmResult:
    """Median times of one warm run, in microseconds, and the UpdateItem calls per invocation."""

    handler_us: float
    paynet_floor_us: float
    full_floor_us: float
    update_items: int
    rounds: int


@dataclass(frozen=True)
class ColdResult:
    """Median cold-start phases and the boto3-only floor, in milliseconds."""

    phases_ms: dict[str, float]
    total_ms: float
    boto3_floor_ms: float
    runs: int


@dataclass(frozen=True)
class RequestCounts:
    """Calls that the function made over ``invocations`` invocations after a cold start."""

    invocations: int
    secret_fetches: int
    paynet_connections: int


@dataclass(frozen=True)
class PackageSize:
    """The unzipped ``sam build`` output of the function, or why it was not measured."""

    total_bytes: int | None
    bundled_runtime_packages: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ImportTime:
    """Import time of one top-level package, in microseconds.

    ``self_us`` is the time spent in the package's own module bodies. ``cumulative_us`` also
    counts the packages that it imported first, so cumulative values of packages overlap.
    """

    package: str
    self_us: int
    cumulative_us: int


@dataclass(frozen=True)
class Goal:
    """One target of the benchmark and whether this run meets it."""

    name: str
    measured: str
    target: str
    met: bool | None


@dataclass
class BenchResults:
    warm: WarmResult
    cold: ColdResult
    requests: RequestCounts
    imports: list[ImportTime]
    package: PackageSize
    machine: dict[str, str] = field(default_factory=dict)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render rows as a Markdown table whose columns are padded to the same width."""
    widths = [len(header) for header in headers]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {row!r} has {len(row)} cells, not {len(headers)}")
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(headers), separator, *(line(row) for row in rows)])


def evaluate_goals(results: BenchResults) -> list[Goal]:
    """Compare the results with the goals. ``met`` is None for a figure that was not measured."""
    warm = results.warm
    cold = results.cold
    warm_ratio = warm.handler_us / warm.full_floor_us
    cold_ratio = cold.total_ms / cold.boto3_floor_ms
    counts = results.requests
    package = results.package

    package_met: bool | None = None
    package_measured = package.note or "not measured"
    if package.total_bytes is not None:
        package_met = (
            package.total_bytes < PACKAGE_GOAL_BYTES and not package.bundled_runtime_packages
        )
        bundled = ", ".join(package.bundled_runtime_packages) or "no boto3/botocore"
        package_measured = f"{package.total_bytes / 1e6:.1f} MB, {bundled}"

    return [
        Goal(
            "warm invocation vs POST + UpdateItem floor",
            f"{warm_ratio:.2f}x",
            f"<= {WARM_GOAL}x",
            warm_ratio <= WARM_GOAL,
        ),
        Goal(
            "cold start vs boto3-only interpreter",
            f"{cold_ratio:.2f}x",
            f"<= {COLD_GOAL}x",
            cold_ratio <= COLD_GOAL,
        ),
        Goal(
            f"Secrets Manager calls per {counts.invocations:,} invocations",
            str(counts.secret_fetches),
            "1",
            counts.secret_fetches <= 1,
        ),
        Goal(
            f"Paynet connections per {counts.invocations:,} invocations",
            str(counts.paynet_connections),
            "1",
            counts.paynet_connections <= 1,
        ),
        Goal(
            "built package, unzipped",
            package_measured,
            "< 15 MB, no boto3/botocore",
            package_met,
        ),
    ]


def _status(met: bool | None) -> str:
    if met is None:
        return "NOT MEASURED"
    return "met" if met else "MISSED"


def build_report(results: BenchResults, import_rows: int = 12) -> str:
    """Build every table of the benchmark as one Markdown text."""
    warm = results.warm
    cold = results.cold
    sections: list[str] = []

    if results.machine:
        machine = ", ".join(f"{name} {value}" for name, value in results.machine.items())
        sections.append(f"Machine: {machine}")

    sections.append(
        f"Warm invocations ({warm.rounds:,} rounds, medians, the three measured in turn)\n\n"
        + render_table(
            ["measurement", "median (us)", "handler / this"],
            [
                ["warm handler invocation", f"{warm.handler_us:.0f}", "1.00x"],
                [
                    "bare urllib3 POST to the sandbox",
                    f"{warm.paynet_floor_us:.0f}",
                    f"{warm.handler_us / warm.paynet_floor_us:.2f}x (Paynet only)",
                ],
                [
                    f"bare POST + {warm.update_items} bare UpdateItem",
                    f"{warm.full_floor_us:.0f}",
                    f"{warm.handler_us / warm.full_floor_us:.2f}x (goal)",
                ],
            ],
        )
    )

    phase_rows = [[phase, f"{ms:.0f}"] for phase, ms in cold.phases_ms.items()]
    phase_rows.append(["total: process start to first response", f"{cold.total_ms:.0f}"])
    phase_rows.append(["floor: fresh interpreter that imports boto3", f"{cold.boto3_floor_ms:.0f}"])
    sections.append(
        f"Cold start ({cold.runs} fresh interpreters each, medians)\n\n"
        + render_table(["phase", "ms"], phase_rows)
    )

    top_imports = sorted(results.imports, key=lambda item: item.cumulative_us, reverse=True)
    sections.append(
        "Import of otp_check.handler by top-level package (python -X importtime)\n\n"
        + render_table(
            ["package", "self ms", "cumulative ms"],
            [
                [item.package, f"{item.self_us / 1000:.1f}", f"{item.cumulative_us / 1000:.1f}"]
                for item in top_imports[:import_rows]
            ],
        )
    )

    sections.append(
        "Goals\n\n"
        + render_table(
            ["goal", "measured", "target", "status"],
            [
                [goal.name, goal.measured, goal.target, _status(goal.met)]
                for goal in evaluate_goals(results)
            ],
        )
    )
    return "\n\n".join(sections)


def parse_import_times(stderr: str) -> list[ImportTime]:
    """Sum ``python -X importtime`` output by top-level package.

    Self times add up without overlap. A package's cumulative time is the sum of the cumulative
    times of its outermost imports, those not nested inside another import of the same package.
    """
    # importtime prints a module after the modules it imported, indented two spaces per level.
    # A stack of finished subtrees turns that post-order listing into a tree.
    roots: list[tuple[int, str, int, int, list[Any]]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        name_field = fields[2]
        depth = (len(name_field) - len(name_field.lstrip(" ")) - 1) // 2
        children: list[Any] = []
        while roots and roots[-1][0] == depth + 1:
            children.insert(0, roots.pop())
        roots.append((depth, name_field.strip(), int(fields[0]), int(fields[1]), children))

    self_times: dict[str, int] = {}
    cumulative_times: dict[str, int] = {}

    def visit(node: tuple[int, str, int, int, list[Any]], enclosing: frozenset[str]) -> None:
        _, name, self_us, cumulative_us, children = node
        package = name.split(".", 1)[0]
        self_times[package] = self_times.get(package, 0) + self_us
        if package not in enclosing:
            cumulative_times[package] = cumulative_times.get(package, 0) + cumulative_us
        for child in children:
            visit(child, enclosing | {package})

    for root in roots:
        visit(root, frozenset())
    return [
        ImportTime(package, self_times[package], cumulative_times[package])
        for package in self_times
    ]
