"""Measure the function's overhead against the loopback stand-ins and print it as tables.

Run ``python -m bench.run`` from the repository root (``make bench`` does). The Paynet sandbox
(its command-line interface) and moto's server each run in a process of their own, so that
neither competes with the function for the GIL. Nothing leaves 127.0.0.1.

Figures, each next to a floor measured in the same run:

- warm: median time of a warm handler invocation, against a bare urllib3 POST of the same body
  to the sandbox, and against that POST plus as many bare boto3 UpdateItem calls to moto as
  one invocation makes;
- cold start: a fresh interpreter from process start to the first response, by phase, against
  a fresh interpreter that only imports boto3;
- import time of ``otp_check.handler`` by top-level package, from ``python -X importtime``;
- Secrets Manager calls and new Paynet connections over 1,000 invocations after a cold start;
- the unzipped size of the ``sam build`` output, and whether boto3 or botocore is bundled.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from bench.report import (
    BenchResults,
    ColdResult,
    ImportTime,
    PackageSize,
    RequestCounts,
    WarmResult,
    build_report,
    parse_import_times,
)

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = REPOSITORY_ROOT / ".aws-sam" / "build"
FUNCTION_BUILD_DIR = BUILD_DIR / "OtpCheckFunction"
EVENT_PATH = REPOSITORY_ROOT / "events" / "check_otp.json"

# A made-up key in Paynet's format. The sandbox accepts only this key.
BENCH_SECRET_KEY = "sck_test_Bench/Loopback+Key00000"  # noqa: S105 - made up
SECRET_NAME = "paynet/otp-check/bench"  # noqa: S105 - a name, not a value

REQUEST_COUNT_INVOCATIONS = 1000
# Seconds that a stand-in may take to print its URL, and to exit after SIGTERM.
STAND_IN_TIMEOUT_SECONDS = 30
COLD_START_TIMEOUT_SECONDS = 120
RUNTIME_PACKAGES = ("boto3", "botocore")
# The distributions that the Lambda Python runtime provides, besides the bundled ones.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "python-dateutil", "six", "jmespath")


# Measurement.


def _pinned_distributions() -> list[str]:
    lines = (REPOSITORY_ROOT / "src" / "requirements.txt").read_text("utf-8").splitlines()
    return [line.split("==")[0].strip() for line in lines if "==" in line]


def _top_level_files(distribution_name: str) -> set[Path]:
    distribution = importlib.metadata.distribution(distribution_name)
    names: set[Path] = set()
    for file in distribution.files or ():
        top = file.parts[0]
        if top.endswith((".dist-info", ".data")) or top in ("..", "bin", "__pycache__"):
            continue
        names.add(Path(str(distribution.locate_file(top))))
    return names


def build_lambda_like_path(directory: Path) -> Path:
    """Link the function's packages and the runtime's boto3 into ``directory``, and return it.

    The dev venv also contains awscrt and pyOpenSSL, which botocore imports when it finds them and
    which the Lambda runtime does not have. An interpreter run with ``python -S`` and PYTHONPATH
    set to this directory finds the same packages as a Lambda function: the bundled packages and
    the runtime's boto3 and botocore, and not the rest of the venv.
    """
    targets = {REPOSITORY_ROOT / "src" / "otp_check"}
    for name in (*_pinned_distributions(), *RUNTIME_DISTRIBUTIONS):
        targets |= _top_level_files(name)
    for target in targets:
        (directory / target.name).symlink_to(target)
    return directory


@contextlib.contextmanager
def paynet_sandbox_process() -> Iterator[str]:
    """Run the sandbox's command-line interface on a free loopback port and yield its URL."""
    process = subprocess.Popen(  # noqa: S603 - runs a module of this repository
        [
            sys.executable,
            "-m",
            "tests.support.paynet_sandbox",
            "--port",
            "0",
            "--secret-key",
            BENCH_SECRET_KEY,
        ],
        cwd=REPOSITORY_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = process.stdout.readline().strip() if process.stdout is not None else ""
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"Paynet sandbox did not start: {url!r}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=STAND_IN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


@contextlib.contextmanager
def _function_output_discarded() -> Iterator[TextIO]:
    """Write the function's log lines and metrics to /dev/null, as Lambda writes them to a pipe."""
    from otp_check.observability import logger

    handler = logger.registered_handler
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        previous = handler.setStream(devnull)  # type: ignore[attr-defined]
        try:
            with contextlib.redirect_stdout(devnull):
                yield devnull
        finally:
            handler.setStream(previous)  # type: ignore[attr-defined]


def _verifier_connections() -> int:
    from otp_check.dependencies import get_verifier

    paynet = get_verifier()._paynet
    return int(paynet.pool.num_connections)  # type: ignore[attr-defined]


def count_requests(aws: Any, event: dict[str, Any], invocations: int) -> RequestCounts:
    """Count Secrets Manager calls and Paynet connections from a cold start on."""
    from tests.support.lambda_context import FakeLambdaContext

    from otp_check.dependencies import reset_dependencies
    from otp_check.handler import lambda_handler

    reset_dependencies()
    aws.reset()
    with _function_output_discarded():
        for _ in range(invocations):
            response = lambda_handler(event, FakeLambdaContext())
            if response["statusCode"] != 200:
                raise RuntimeError(f"warm invocation failed: {response}")
    calls = aws.calls
    return RequestCounts(
        invocations=invocations,
        secret_fetches=calls["GetSecretValue"],
        # urllib3 counts the connections that the function's pool opened.
        paynet_connections=_verifier_connections(),
    )


def capture_update_items(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the UpdateItem requests of one warm invocation, as the function sent them.

    The floor replays exactly these requests, so moto's time to evaluate their expressions
    counts in the floor and not as the function's overhead.
    """
    import boto3
    from tests.support.lambda_context import FakeLambdaContext

    from otp_check.dependencies import reset_dependencies
    from otp_check.handler import lambda_handler

    captured: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        captured.append(copy.deepcopy(params))

    # Clients copy the session's event handlers when they are created, so the function's
    # clients are rebuilt after the handler is registered.
    session = boto3._get_default_session()
    session.events.register("provide-client-params.dynamodb.UpdateItem", capture)
    try:
        reset_dependencies()
        with _function_output_discarded():
            lambda_handler(event, FakeLambdaContext())
            captured.clear()
            lambda_handler(event, FakeLambdaContext())
    finally:
        session.events.unregister("provide-client-params.dynamodb.UpdateItem", capture)
        reset_dependencies()
    return captured


def measure_warm(
    sandbox_url: str, event: dict[str, Any], update_items: list[dict[str, Any]], rounds: int
) -> WarmResult:
    """Time warm invocations and both floors in turn, so that drift affects all three alike."""
    import boto3
    import urllib3
    from tests.support.lambda_context import FakeLambdaContext

    from otp_check.handler import lambda_handler

    body = event["body"].encode()
    headers = {
        "Authorization": f"Basic {BENCH_SECRET_KEY}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    url = urllib3.util.parse_url(sandbox_url)
    pool = urllib3.HTTPConnectionPool(url.host or "127.0.0.1", port=url.port, maxsize=1)
    # A session of its own, so that the capture handler never receives the floor's calls.
    dynamodb = boto3.session.Session().client("dynamodb")

    def post() -> None:
        response = pool.urlopen(
            "POST", "/v1/card/check_otp", body=body, headers=headers, retries=False
        )
        if response.status != 200:
            raise RuntimeError(f"bare POST failed with HTTP {response.status}")

    def post_and_update() -> None:
        post()
        for request in update_items:
            # The function ignores a failed release condition in the same way.
            with contextlib.suppress(dynamodb.exceptions.ConditionalCheckFailedException):
                dynamodb.update_item(**request)

    def invoke() -> None:
        lambda_handler(event, FakeLambdaContext())

    timed: dict[str, Callable[[], None]] = {
        "handler": invoke,
        "paynet": post,
        "full": post_and_update,
    }
    samples: dict[str, list[int]] = {name: [] for name in timed}
    names = list(timed)
    with _function_output_discarded():
        for _ in range(20):
            for name in names:
                timed[name]()
        for index in range(rounds):
            # A rotating order keeps a fixed position in the round from favouring one.
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter_ns()
                timed[name]()
                samples[name].append(time.perf_counter_ns() - started)
    pool.close()
    dynamodb.close()
    return WarmResult(
        handler_us=_median_us(samples["handler"]),
        paynet_floor_us=_median_us(samples["paynet"]),
        full_floor_us=_median_us(samples["full"]),
        update_items=len(update_items),
        rounds=rounds,
    )


def _run_fresh_python(environ: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -S ARGUMENTS`` in a fresh interpreter with the Lambda-like ``environ``."""
    return subprocess.run(  # noqa: S603 - this interpreter, with the benchmark's own arguments
        [sys.executable, "-S", *arguments],
        cwd=REPOSITORY_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=COLD_START_TIMEOUT_SECONDS,
    )


def _run_cold_start(environ: dict[str, str], report_path: Path) -> dict[str, float]:
    started = time.monotonic()
    script = REPOSITORY_ROOT / "bench" / "cold_start.py"
    _run_fresh_python(environ, str(script), str(EVENT_PATH), str(report_path))
    report = json.loads(report_path.read_text("utf-8"))
    if report["status"] != 200:
        raise RuntimeError(f"cold start invocation returned {report['status']}")
    marks = [
        ("interpreter start", started, report["started"]),
        ("imports", report["started"], report["imported"]),
        ("settings", report["imported"], report["settings_read"]),
        ("clients and Paynet pool", report["settings_read"], report["clients_built"]),
        ("secret fetch", report["clients_built"], report["secret_fetched"]),
        ("first invocation (DynamoDB + Paynet)", report["secret_fetched"], report["responded"]),
    ]
    phases = {name: (end - begin) * 1000 for name, begin, end in marks}
    phases["total"] = (report["responded"] - started) * 1000
    return phases


def _run_boto3_floor(environ: dict[str, str]) -> float:
    started = time.monotonic()
    completed = _run_fresh_python(environ, "-c", "import boto3, time; print(time.monotonic())")
    return (float(completed.stdout.strip()) - started) * 1000


def measure_cold(environ: dict[str, str], runs: int) -> ColdResult:
    """Start fresh interpreters in turn: the function's cold start, then the boto3 floor."""
    phase_samples: dict[str, list[float]] = {}
    floor_samples: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "cold_start.json"
        for _ in range(runs):
            for name, value in _run_cold_start(environ, report_path).items():
                phase_samples.setdefault(name, []).append(value)
            floor_samples.append(_run_boto3_floor(environ))
    total = phase_samples.pop("total")
    return ColdResult(
        phases_ms={name: statistics.median(values) for name, values in phase_samples.items()},
        total_ms=statistics.median(total),
        boto3_floor_ms=statistics.median(floor_samples),
        runs=runs,
    )


def measure_import_times(environ: dict[str, str], runs: int) -> list[ImportTime]:
    """Run ``python -X importtime`` ``runs`` times and keep each package's median."""
    by_package: dict[str, list[ImportTime]] = {}
    for _ in range(runs):
        completed = _run_fresh_python(environ, "-X", "importtime", "-c", "import otp_check.handler")
        for item in parse_import_times(completed.stderr):
            by_package.setdefault(item.package, []).append(item)
    return [
        ImportTime(
            package,
            int(statistics.median(item.self_us for item in items)),
            int(statistics.median(item.cumulative_us for item in items)),
        )
        for package, items in by_package.items()
    ]


def measure_package(build: bool) -> PackageSize:
    """Run ``sam build`` when ``build`` is set, then size its output for the function."""
    if build:
        environ = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
        # sam runs src/Makefile, whose pip must be this venv's.
        environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
        completed = subprocess.run(  # noqa: S603 - runs the SAM CLI of this venv
            [
                str(Path(sys.executable).parent / "sam"),
                "build",
                "--template",
                "template.yaml",
                "--build-dir",
                str(BUILD_DIR),
            ],
            cwd=REPOSITORY_ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if completed.returncode != 0:
            return PackageSize(None, note=f"sam build failed: {completed.stderr.strip()[-200:]}")
    if not FUNCTION_BUILD_DIR.is_dir():
        return PackageSize(None, note="no sam build output")
    total = sum(path.stat().st_size for path in FUNCTION_BUILD_DIR.rglob("*") if path.is_file())
    bundled = tuple(name for name in RUNTIME_PACKAGES if (FUNCTION_BUILD_DIR / name).exists())
    return PackageSize(total, bundled)


def _create_secret_and_table(table_name: str) -> None:
    import boto3
    from tests.support.aws import create_attempts_table

    client = boto3.client("secretsmanager")
    client.create_secret(
        Name=SECRET_NAME, SecretString=json.dumps({"secret_key": BENCH_SECRET_KEY})
    )
    client.close()
    create_attempts_table(table_name)


def run(rounds: int, cold_runs: int, build: bool) -> BenchResults:
    """Start the stand-ins, take every measurement, and stop the stand-ins again."""
    from tests.support.aws import local_aws_server

    load_average = os.getloadavg()[0]
    table_name = f"bench-attempts-{uuid.uuid4()}"
    event = json.loads(EVENT_PATH.read_text("utf-8"))
    print("Building the package with sam build ...", file=sys.stderr, flush=True)
    package = measure_package(build)

    with (
        tempfile.TemporaryDirectory() as scratch,
        paynet_sandbox_process() as sandbox_url,
        local_aws_server(os.environ) as aws,
    ):
        _create_secret_and_table(table_name)
        os.environ["PAYNET_BASE_URL"] = sandbox_url
        os.environ["PAYNET_SECRET_ID"] = SECRET_NAME
        os.environ["ATTEMPTS_TABLE_NAME"] = table_name
        # Fresh interpreters import only what a Lambda function can import (build_lambda_like_path).
        lambda_path = str(build_lambda_like_path(Path(scratch)))
        environ = {
            **os.environ,
            "PYTHONPATH": lambda_path,
            # The X-Ray SDK checks LAMBDA_TASK_ROOT at import. Outside Lambda it builds two
            # botocore X-Ray clients for centralized sampling, which Lambda never loads.
            "LAMBDA_TASK_ROOT": lambda_path,
            # NOTE: with LAMBDA_TASK_ROOT set, Powertools would trace, and no X-Ray daemon or
            # trace header exists here. Tracing stays off, so X-Ray patching and segment
            # sending are not part of the cold-start figures.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        print("Timing imports ...", file=sys.stderr, flush=True)
        imports = measure_import_times(environ, 3)

        print("Counting AWS and Paynet requests ...", file=sys.stderr, flush=True)
        counts = count_requests(aws, event, REQUEST_COUNT_INVOCATIONS)
        update_items = capture_update_items(event)
        print(f"Timing {rounds:,} warm rounds ...", file=sys.stderr, flush=True)
        warm = measure_warm(sandbox_url, event, update_items, rounds)
        print(f"Timing {cold_runs} cold starts ...", file=sys.stderr, flush=True)
        cold = measure_cold(environ, cold_runs)

        from otp_check.dependencies import reset_dependencies

        reset_dependencies()

    machine = {
        "cores": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        # Other processes on the machine slow every figure, so the load is part of the record.
        "load average (1 min) at start": f"{load_average:.2f}",
    }
    return BenchResults(warm, cold, counts, imports, package, machine)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=1000, help="warm rounds, each timing all three (default 1000)"
    )
    parser.add_argument(
        "--cold-runs", type=int, default=7, help="fresh interpreters per cold figure (default 7)"
    )
    parser.add_argument(
        "--no-build", action="store_true", help="size the existing sam build output, if any"
    )
    arguments = parser.parse_args(argv)
    results = run(arguments.rounds, arguments.cold_runs, build=not arguments.no_build)
    print(build_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
