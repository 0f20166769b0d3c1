"""The processed template.yaml in each network mode, with its conditions applied.

Each test transforms template.yaml with SAM's translator, then resolves the conditions for one
set of parameter values, as CloudFormation does at deploy time (tests/support/cloudformation.py).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support.cloudformation import load_template, resolve, rule_violations, sam_transform
from tests.unit.test_template import BASE_MANAGED_POLICIES, EXPECTED_GRANTS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
NETWORK_TEMPLATE_PATH = ROOT / "stacks" / "network.yaml"
MONITORING_TEMPLATE_PATH = ROOT / "stacks" / "monitoring.yaml"
SAMCONFIG_PATH = ROOT / "samconfig.toml"

FUNCTION_ID = "OtpCheckFunction"
ROLE_ID = "OtpCheckFunctionRole"
ATTACH_SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
ATTACH_SECURITY_GROUPS = ["sg-0123456789abcdef0"]
MODES: dict[str, dict[str, str]] = {
    "none": {},
    "attach": {
        "NetworkMode": "attach",
        "VpcSubnetIds": ",".join(ATTACH_SUBNETS),
        "VpcSecurityGroupIds": ",".join(ATTACH_SECURITY_GROUPS),
    },
    "create": {"NetworkMode": "create"},
}
VPC_ACCESS_POLICY = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}
# The outputs of every network mode, and the ones that only NetworkMode create adds.
COMMON_OUTPUTS = {
    "CheckOtpUrl",
    "OtpCheckFunctionArn",
    "OtpCheckLogGroupName",
    "OtpCheckApiAccessLogGroupName",
    "AttemptsTableName",
    "DashboardName",
}
EGRESS_OUTPUTS = {"PaynetEgressIp", "PaynetEgressIpAllocationId"}
EXISTING_ALLOCATION_ID = "eipalloc-0123456789abcdef0"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(template)


@pytest.fixture(scope="module", params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def deployed(transformed: dict[str, Any], mode: str) -> dict[str, Any]:
    """The processed template as CloudFormation deploys it in one network mode."""
    return resolve(transformed, MODES[mode])


def function_properties(deployed: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = deployed["Resources"][FUNCTION_ID]["Properties"]
    return properties


def role_grants(deployed: dict[str, Any]) -> set[tuple[str, str]]:
    role = deployed["Resources"][ROLE_ID]["Properties"]
    grants = set()
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            for action in actions if isinstance(actions, list) else [actions]:
                grants.add((action, json.dumps(statement["Resource"])))
    return grants


def samconfig_overrides(environment: str) -> dict[str, str]:
    samconfig = tomllib.loads(SAMCONFIG_PATH.read_text("utf-8"))
    overrides = samconfig[environment]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in overrides)


def test_vpc_config_none(transformed: dict[str, Any]) -> None:
    function = function_properties(resolve(transformed, MODES["none"]))
    assert "VpcConfig" not in function


def test_vpc_config_attach(transformed: dict[str, Any]) -> None:
    function = function_properties(resolve(transformed, MODES["attach"]))
    assert function["VpcConfig"] == {
        "SubnetIds": ATTACH_SUBNETS,
        "SecurityGroupIds": ATTACH_SECURITY_GROUPS,
    }


def test_vpc_config_create(transformed: dict[str, Any]) -> None:
    function = function_properties(resolve(transformed, MODES["create"]))
    assert function["VpcConfig"] == {
        "SubnetIds": {"Fn::Split": [",", {"Fn::GetAtt": ["Network", "Outputs.PrivateSubnetIds"]}]},
        "SecurityGroupIds": [{"Fn::GetAtt": ["Network", "Outputs.SecurityGroupId"]}],
    }


def test_network_stack_only_in_create(deployed: dict[str, Any], mode: str) -> None:
    stacks = {
        logical_id: resource["Properties"]["TemplateURL"]
        for logical_id, resource in deployed["Resources"].items()
        if resource["Type"] == "AWS::CloudFormation::Stack"
    }
    expected = {"Monitoring": "stacks/monitoring.yaml"}
    if mode == "create":
        expected["Network"] = "stacks/network.yaml"
    assert stacks == expected


def test_network_stack_parameters(transformed: dict[str, Any]) -> None:
    overrides = {**MODES["create"], "VpcCidrBlock": "10.20.0.0/16"}
    network = resolve(transformed, overrides)["Resources"]["Network"]["Properties"]
    assert network["Parameters"] == {"VpcCidrBlock": "10.20.0.0/16", "EgressIpAllocationId": ""}


def test_role_managed_policies_by_mode(deployed: dict[str, Any], mode: str) -> None:
    role = deployed["Resources"][ROLE_ID]["Properties"]
    expected = list(BASE_MANAGED_POLICIES)
    if mode != "none":
        expected.append(VPC_ACCESS_POLICY)
    assert role["ManagedPolicyArns"] == expected


def test_role_inline_grants_by_mode(deployed: dict[str, Any]) -> None:
    # The network interface permissions come only from the managed policy, never inline.
    assert role_grants(deployed) == EXPECTED_GRANTS


def test_function_role_by_mode(deployed: dict[str, Any]) -> None:
    function = function_properties(deployed)
    assert function["Role"] == {"Fn::GetAtt": [ROLE_ID, "Arn"]}
    assert [
        logical_id
        for logical_id, resource in deployed["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    ] == [ROLE_ID]


def test_monitoring_stack_by_mode(deployed: dict[str, Any], template: dict[str, Any]) -> None:
    monitoring = deployed["Resources"]["Monitoring"]["Properties"]["Parameters"]
    assert monitoring["FunctionName"] == {"Ref": FUNCTION_ID}
    assert monitoring["NamePrefix"] == {"Ref": "AWS::StackName"}
    assert monitoring["ApiName"] == {"Ref": "AWS::StackName"}
    assert monitoring["ApiStageName"] == template["Parameters"]["ApiStageName"]["Default"]
    assert monitoring["AlarmTopicArn"] == ""
    assert monitoring["AlarmEvaluationPeriods"] == "3"
    assert monitoring["ErrorRateAlarmPercent"] == "5"
    assert monitoring["PaynetFailureRateAlarmPercent"] == "10"


def test_outputs_by_mode(deployed: dict[str, Any], mode: str) -> None:
    expected = COMMON_OUTPUTS | (EGRESS_OUTPUTS if mode == "create" else set())
    assert set(deployed["Outputs"]) == expected
    assert deployed["Outputs"]["DashboardName"]["Value"] == {
        "Fn::GetAtt": ["Monitoring", "Outputs.DashboardName"]
    }


def test_egress_ip_output(transformed: dict[str, Any]) -> None:
    outputs = resolve(transformed, MODES["create"])["Outputs"]
    assert outputs["PaynetEgressIp"]["Value"] == {"Fn::GetAtt": ["Network", "Outputs.EgressIp"]}
    assert "Register it with Paynet" in outputs["PaynetEgressIp"]["Description"]
    assert outputs["PaynetEgressIpAllocationId"]["Value"] == {
        "Fn::GetAtt": ["Network", "Outputs.EgressIpAllocationId"]
    }


def test_egress_ip_reused(transformed: dict[str, Any]) -> None:
    overrides = {**MODES["create"], "EgressIpAllocationId": EXISTING_ALLOCATION_ID}
    deployed = resolve(transformed, overrides)
    network = deployed["Resources"]["Network"]["Properties"]
    assert network["Parameters"]["EgressIpAllocationId"] == EXISTING_ALLOCATION_ID
    # The IP itself is the one already registered, so only its allocation id is an output.
    assert "PaynetEgressIp" not in deployed["Outputs"]
    assert "PaynetEgressIpAllocationId" in deployed["Outputs"]


@pytest.mark.parametrize(
    ("overrides", "violations"),
    [
        (MODES["none"], []),
        (MODES["attach"], []),
        (MODES["create"], []),
        (
            {"NetworkMode": "attach"},
            [
                "NetworkMode attach needs VpcSubnetIds",
                "NetworkMode attach needs VpcSecurityGroupIds",
            ],
        ),
        (
            {"NetworkMode": "attach", "VpcSubnetIds": ATTACH_SUBNETS[0]},
            ["NetworkMode attach needs VpcSecurityGroupIds"],
        ),
    ],
)
def test_attach_rule(
    template: dict[str, Any], overrides: dict[str, str], violations: list[str]
) -> None:
    assert rule_violations(template, overrides) == violations


def test_attach_rule_survives_transform(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    assert transformed["Rules"] == template["Rules"]


@pytest.mark.parametrize(("reserved", "expected"), [("0", None), ("1", "1"), ("40", "40")])
def test_reserved_concurrency(
    transformed: dict[str, Any], reserved: str, expected: str | None
) -> None:
    function = function_properties(resolve(transformed, {"ReservedConcurrency": reserved}))
    assert function.get("ReservedConcurrentExecutions") == expected


def test_reserved_concurrency_default(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ReservedConcurrency"]
    assert parameter["Default"] == 0
    assert parameter["MinValue"] == 0


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("VpcSubnetIds", "", True),
        ("VpcSubnetIds", "subnet-0123456789abcdef0", True),
        ("VpcSubnetIds", "subnet-01234567,subnet-0123456789abcdef0", True),
        ("VpcSubnetIds", "subnet-0123456789abcdef0, subnet-0fedcba9876543210", False),
        ("VpcSubnetIds", "subnet-0123456789abcdef0,", False),
        ("VpcSubnetIds", "sg-0123456789abcdef0", False),
        ("VpcSecurityGroupIds", "", True),
        ("VpcSecurityGroupIds", "sg-0123456789abcdef0,sg-01234567", True),
        ("VpcSecurityGroupIds", "sg-0123456789ABCDEF0", False),
        ("VpcSecurityGroupIds", "subnet-0123456789abcdef0", False),
        ("VpcCidrBlock", "10.0.0.0/16", True),
        ("VpcCidrBlock", "172.31.0.0/22", True),
        ("VpcCidrBlock", "192.168.0.0/20", True),
        ("VpcCidrBlock", "10.0.0.0/23", False),
        ("VpcCidrBlock", "10.0.0.0/8", False),
        ("VpcCidrBlock", "172.32.0.0/16", False),
        ("VpcCidrBlock", "8.8.0.0/16", False),
        ("EgressIpAllocationId", "", True),
        ("EgressIpAllocationId", EXISTING_ALLOCATION_ID, True),
        ("EgressIpAllocationId", "203.0.113.10", False),
        ("AlarmTopicArn", "", True),
        ("AlarmTopicArn", "arn:aws:sns:eu-central-1:123456789012:paynet-otp-check-alarms", True),
        ("AlarmTopicArn", "arn:aws:sqs:eu-central-1:123456789012:alarms", False),
        ("AlarmTopicArn", "paynet-otp-check-alarms", False),
    ],
)
def test_parameter_pattern(template: dict[str, Any], name: str, value: str, allowed: bool) -> None:
    pattern = template["Parameters"][name]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) == allowed


@pytest.mark.parametrize("name", ["VpcCidrBlock", "EgressIpAllocationId"])
def test_network_parameters_match_nested(template: dict[str, Any], name: str) -> None:
    # A value that passes template.yaml must pass stacks/network.yaml too.
    nested = load_template(NETWORK_TEMPLATE_PATH)["Parameters"][name]
    assert template["Parameters"][name]["AllowedPattern"] == nested["AllowedPattern"]
    assert str(template["Parameters"][name]["Default"]) == str(nested["Default"])


def test_monitoring_parameters_match_nested(template: dict[str, Any]) -> None:
    nested = load_template(MONITORING_TEMPLATE_PATH)["Parameters"]
    for name in ("AlarmTopicArn", "AlarmEvaluationPeriods", "ErrorRateAlarmPercent"):
        for key in ("Default", "AllowedPattern", "MinValue", "MaxValue"):
            assert template["Parameters"][name].get(key) == nested[name].get(key), (name, key)


@pytest.mark.parametrize(
    ("logical_id", "path"),
    [("Network", NETWORK_TEMPLATE_PATH), ("Monitoring", MONITORING_TEMPLATE_PATH)],
)
def test_nested_parameters_declared(template: dict[str, Any], logical_id: str, path: Path) -> None:
    nested = load_template(path)["Parameters"]
    passed = template["Resources"][logical_id]["Properties"]["Parameters"]
    assert set(passed) <= set(nested), f"{logical_id} passes undeclared parameters"
    required = {name for name, parameter in nested.items() if "Default" not in parameter}
    assert required <= set(passed), f"{logical_id} leaves required parameters unset"


def test_monitoring_matches_function(template: dict[str, Any]) -> None:
    function = template["Resources"][FUNCTION_ID]["Properties"]
    variables = function["Environment"]["Variables"]
    monitoring = template["Resources"]["Monitoring"]["Properties"]["Parameters"]
    assert monitoring["FunctionTimeoutSeconds"] == str(function["Timeout"])
    assert monitoring["MetricsNamespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
    assert monitoring["ServiceName"] == variables["POWERTOOLS_SERVICE_NAME"]
    assert monitoring["ApiStageName"] == {"Ref": "ApiStageName"}


def test_api_name_matches_monitoring(template: dict[str, Any], transformed: dict[str, Any]) -> None:
    # The alarms and the dashboard select the API's metrics by its name.
    monitoring = template["Resources"]["Monitoring"]["Properties"]["Parameters"]
    rest_api = transformed["Resources"]["OtpCheckApi"]
    assert rest_api["Type"] == "AWS::ApiGateway::RestApi"
    assert rest_api["Properties"]["Name"] == monitoring["ApiName"]


@pytest.mark.parametrize("environment", ["test", "live"])
def test_samconfig_capabilities(environment: str) -> None:
    samconfig = tomllib.loads(SAMCONFIG_PATH.read_text("utf-8"))
    capabilities = samconfig[environment]["deploy"]["parameters"]["capabilities"].split()
    # Nested applications need CAPABILITY_AUTO_EXPAND, the function role CAPABILITY_IAM.
    assert sorted(capabilities) == ["CAPABILITY_AUTO_EXPAND", "CAPABILITY_IAM"]


@pytest.mark.parametrize("environment", ["test", "live"])
def test_samconfig_values_valid(template: dict[str, Any], environment: str) -> None:
    for name, value in samconfig_overrides(environment).items():
        parameter = template["Parameters"][name]
        if "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], value), (environment, name)
        if "AllowedValues" in parameter:
            assert value in [str(allowed) for allowed in parameter["AllowedValues"]], name
        if parameter["Type"] == "Number":
            assert parameter["MinValue"] <= int(value) <= parameter["MaxValue"], (environment, name)
    assert rule_violations(template, samconfig_overrides(environment)) == []


@pytest.mark.parametrize(
    ("environment", "log_level", "evaluation_periods", "reserved"),
    [("test", "DEBUG", "5", None), ("live", "INFO", "3", "40")],
)
def test_samconfig_environment_settings(
    transformed: dict[str, Any],
    environment: str,
    log_level: str,
    evaluation_periods: str,
    reserved: str | None,
) -> None:
    deployed = resolve(transformed, samconfig_overrides(environment))
    function = function_properties(deployed)
    monitoring = deployed["Resources"]["Monitoring"]["Properties"]["Parameters"]
    assert function["LoggingConfig"]["ApplicationLogLevel"] == log_level
    assert function.get("ReservedConcurrentExecutions") == reserved
    assert monitoring["AlarmEvaluationPeriods"] == evaluation_periods
    # Both environments call a real Paynet system, which needs a registered egress IP.
    assert "Network" in deployed["Resources"]
    assert "PaynetEgressIp" in deployed["Outputs"]


def test_samconfig_environments_differ() -> None:
    test, live = samconfig_overrides("test"), samconfig_overrides("live")
    for name in ("PaynetSecretName", "LogLevel", "VpcCidrBlock", "ErrorRateAlarmPercent"):
        assert test[name] != live[name], name
    # The live thresholds are the stricter ones.
    assert int(live["ErrorRateAlarmPercent"]) < int(test["ErrorRateAlarmPercent"])
    assert int(live["PaynetFailureRateAlarmPercent"]) < int(test["PaynetFailureRateAlarmPercent"])
