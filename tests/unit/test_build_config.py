"""The build of the function package and the configuration of the template checks.

.ci/check_build.py checks the built package itself, after `sam build`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.cloudformation import load_template

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_ID = "OtpCheckFunction"
REQUIREMENTS_PATH = ROOT / "src" / "requirements.txt"
FUNCTION_MAKEFILE_PATH = ROOT / "src" / "Makefile"
CHECKOV_CONFIG_PATH = ROOT / ".checkov.yaml"
# Lambda architectures and the manylinux platform tags of their wheels.
WHEEL_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}


def pinned_requirements() -> list[Requirement]:
    lines = REQUIREMENTS_PATH.read_text("utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def build_recipe() -> str:
    makefile = FUNCTION_MAKEFILE_PATH.read_text("utf-8")
    match = re.search(rf"^build-{FUNCTION_ID}:\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert match is not None, f"src/Makefile has no build-{FUNCTION_ID} target"
    return match.group(1).replace("\\\n", " ")


def test_function_built_by_makefile() -> None:
    function = load_template(ROOT / "template.yaml")["Resources"][FUNCTION_ID]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    assert function["Properties"]["CodeUri"] == "src/"


def test_build_targets_function_runtime() -> None:
    function = load_template(ROOT / "template.yaml")["Resources"][FUNCTION_ID]["Properties"]
    recipe = build_recipe()
    (architecture,) = function["Architectures"]
    version = function["Runtime"].removeprefix("python")
    assert f"--platform {WHEEL_PLATFORMS[architecture]}" in recipe
    assert f"--python-version {version}" in recipe
    assert f"--abi cp{version.replace('.', '')}" in recipe


def test_build_installs_pins_without_dependencies() -> None:
    recipe = build_recipe()
    assert "--no-deps" in recipe
    assert "--only-binary=:all:" in recipe
    assert '--target "$(ARTIFACTS_DIR)"' in recipe
    assert "--requirement requirements.txt" in recipe
    assert 'cp -R otp_check "$(ARTIFACTS_DIR)/"' in recipe


def test_requirements_pinned() -> None:
    for requirement in pinned_requirements():
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", requirement


def test_requirements_leave_out_runtime_packages() -> None:
    names = {canonicalize_name(requirement.name) for requirement in pinned_requirements()}
    assert names & RUNTIME_PROVIDED == set()


def test_requirements_satisfy_project_dependencies() -> None:
    pins = {
        canonicalize_name(requirement.name): next(iter(requirement.specifier)).version
        for requirement in pinned_requirements()
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    for text in project["dependencies"]:
        dependency = Requirement(text)
        name = canonicalize_name(dependency.name)
        assert name in pins, f"{name} is a dependency but not pinned in src/requirements.txt"
        assert dependency.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {dependency}"


def test_checkov_checks_every_template() -> None:
    config = yaml.safe_load(CHECKOV_CONFIG_PATH.read_text("utf-8"))
    makefile = (ROOT / "Makefile").read_text("utf-8")
    templates = re.search(r"^TEMPLATES := (.+)$", makefile, flags=re.MULTILINE)
    assert templates is not None
    assert config["file"] == templates.group(1).split()
    assert config["framework"] == ["cloudformation"]
    for path in config["file"]:
        assert (ROOT / path).is_file(), path


def test_checkov_skips_give_reasons() -> None:
    lines = CHECKOV_CONFIG_PATH.read_text("utf-8").splitlines()
    start = lines.index("skip-check:")
    skipped = yaml.safe_load(CHECKOV_CONFIG_PATH.read_text("utf-8"))["skip-check"]
    assert skipped
    for check_id in skipped:
        index = lines.index(f"  - {check_id}", start)
        assert lines[index - 1].lstrip().startswith("# "), f"{check_id} is skipped without a reason"


def test_checkov_requirements_pinned() -> None:
    lines = (ROOT / "requirements-checkov.txt").read_text("utf-8").splitlines()
    requirements = [Requirement(line) for line in lines if line and not line.startswith("#")]
    assert any(canonicalize_name(requirement.name) == "checkov" for requirement in requirements)
    for requirement in requirements:
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", requirement
