"""Check the function package that `sam build` wrote, and print its size.

Run with the dev venv's Python, which has ``packaging``. The checks:

- no boto3 or botocore is bundled, because the Lambda runtime provides both;
- the bundled distributions are exactly the pins of src/requirements.txt;
- the bundle contains every dependency of the project's runtime dependencies, and nothing
  else, except boto3 and botocore, which the runtime provides;
- every native extension is built for CPython 3.13 on arm64, the function's runtime.
"""

from __future__ import annotations

import argparse
import io
import sys
import tomllib
import zipfile
from importlib.metadata import Distribution, distributions
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# Distributions that the Lambda Python runtime provides, so the bundle must not contain them.
RUNTIME_PROVIDED = {"boto3", "botocore"}
# The marker environment of the python3.13 runtime on arm64, for dependencies that apply only
# to some Python versions or platforms.
LAMBDA_ENVIRONMENT = {
    **default_environment(),
    "implementation_name": "cpython",
    "platform_machine": "aarch64",
    "platform_system": "Linux",
    "python_full_version": "3.13.0",
    "python_version": "3.13",
    "sys_platform": "linux",
}
ELF_MAGIC = b"\x7fELF"
# e_machine of AArch64 in the ELF header.
ELF_MACHINE_AARCH64 = 183
# Lambda's limit for a function's unzipped deployment package, in bytes.
UNZIPPED_SIZE_LIMIT = 250 * 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path, help="the function's directory in .aws-sam/build")
    build_dir: Path = parser.parse_args().build_dir

    problems = [
        *check_runtime_packages_absent(build_dir),
        *check_pins(build_dir),
        *check_dependency_closure(build_dir),
        *check_native_extensions(build_dir),
        *check_size(build_dir),
    ]
    for problem in dict.fromkeys(problems):
        print(f"build check failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


def bundled_distributions(build_dir: Path) -> dict[str, Distribution]:
    return {
        canonicalize_name(dist.metadata["Name"]): dist
        for dist in distributions(path=[str(build_dir)])
    }


def check_runtime_packages_absent(build_dir: Path) -> list[str]:
    problems = []
    for name in sorted(RUNTIME_PROVIDED):
        if (build_dir / name).exists():
            problems.append(f"{name}/ is bundled, but the Lambda runtime provides it")
    for name in sorted(RUNTIME_PROVIDED & set(bundled_distributions(build_dir))):
        problems.append(f"the {name} distribution is bundled, but the Lambda runtime provides it")
    return problems


def check_pins(build_dir: Path) -> list[str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "src" / "requirements.txt").read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        if specifier.operator != "==":
            return [f"src/requirements.txt must pin each package with ==, not {line!r}"]
        pins[canonicalize_name(requirement.name)] = specifier.version

    bundled = {name: dist.version for name, dist in bundled_distributions(build_dir).items()}
    problems = []
    for name in sorted(pins.keys() - bundled.keys()):
        problems.append(f"{name} is pinned in src/requirements.txt but not bundled")
    for name in sorted(bundled.keys() - pins.keys()):
        problems.append(f"{name} {bundled[name]} is bundled but not pinned in src/requirements.txt")
    for name in sorted(pins.keys() & bundled.keys()):
        if pins[name] != bundled[name]:
            problems.append(f"{name} {bundled[name]} is bundled, but {pins[name]} is pinned")
    return problems


def check_dependency_closure(build_dir: Path) -> list[str]:
    """Follow the project's runtime dependencies through the bundle's metadata."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    bundled = bundled_distributions(build_dir)
    pending = [Requirement(text) for text in project["dependencies"]]
    needed: set[str] = set()
    followed: set[tuple[str, frozenset[str]]] = set()
    problems = []

    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in RUNTIME_PROVIDED:
            continue
        dist = bundled.get(name)
        if dist is None:
            problems.append(f"{requirement} is needed but not bundled")
            continue
        if not requirement.specifier.contains(dist.version, prereleases=True):
            problems.append(f"{requirement} is needed, but {name} {dist.version} is bundled")
        extras = frozenset(canonicalize_name(extra) for extra in requirement.extras)
        needed.add(name)
        if (name, extras) in followed:
            continue
        followed.add((name, extras))
        for text in dist.requires or []:
            dependency = Requirement(text)
            if dependency.marker is None or any(
                dependency.marker.evaluate({**LAMBDA_ENVIRONMENT, "extra": extra})
                for extra in extras | {""}
            ):
                pending.append(dependency)

    for name in sorted(bundled.keys() - needed - RUNTIME_PROVIDED):
        problems.append(f"{name} is bundled, but no runtime dependency of the project needs it")
    return problems


def check_native_extensions(build_dir: Path) -> list[str]:
    problems = []
    for path in sorted(build_dir.rglob("*.so")):
        header = path.read_bytes()[:20]
        relative = path.relative_to(build_dir)
        if header[:4] != ELF_MAGIC:
            problems.append(f"{relative} is not an ELF shared object")
            continue
        byte_order = "little" if header[5] == 1 else "big"
        machine = int.from_bytes(header[18:20], byte_order)
        if machine != ELF_MACHINE_AARCH64:
            problems.append(f"{relative} is built for ELF machine {machine}, not arm64")
        if ".cpython-313-" not in path.name and ".abi3." not in path.name:
            problems.append(f"{relative} is not built for CPython 3.13")
    return problems


def check_size(build_dir: Path) -> list[str]:
    """Print the package's size, unzipped and zipped, and check Lambda's unzipped limit."""
    files = [path for path in build_dir.rglob("*") if path.is_file()]
    unzipped = sum(path.stat().st_size for path in files)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in files:
            zipped.write(path, path.relative_to(build_dir))
    print(
        f"function package: {len(files)} files, {unzipped / 2**20:.1f} MiB unzipped "
        f"(Lambda allows {UNZIPPED_SIZE_LIMIT // 2**20} MiB), "
        f"{len(archive.getvalue()) / 2**20:.1f} MiB zipped"
    )
    if unzipped > UNZIPPED_SIZE_LIMIT:
        return [f"the package is larger than the {UNZIPPED_SIZE_LIMIT // 2**20} MiB Lambda allows"]
    return []


if __name__ == "__main__":
    sys.exit(main())
