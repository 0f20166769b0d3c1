"""stacks/network.yaml and stacks/monitoring.yaml, the nested templates of template.yaml."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest

from otp_check.problems import _OUTCOME_METRICS
from tests.support.cloudformation import load_template, resolve

ROOT = Path(__file__).resolve().parents[2]
NETWORK_TEMPLATE_PATH = ROOT / "stacks" / "network.yaml"
MONITORING_TEMPLATE_PATH = ROOT / "stacks" / "monitoring.yaml"
RUNBOOK_PATH = ROOT / "docs" / "deployment.md"
HANDLER_PATH = ROOT / "src" / "otp_check" / "handler.py"

ANYWHERE = "0.0.0.0/0"
EXISTING_ALLOCATION_ID = "eipalloc-0123456789abcdef0"
# Every resource type of the network stack and how many of each.
NETWORK_RESOURCE_COUNTS = {
    "AWS::EC2::VPC": 1,
    "AWS::EC2::InternetGateway": 1,
    "AWS::EC2::VPCGatewayAttachment": 1,
    "AWS::EC2::Subnet": 3,
    "AWS::EC2::RouteTable": 2,
    "AWS::EC2::Route": 2,
    "AWS::EC2::SubnetRouteTableAssociation": 3,
    "AWS::EC2::EIP": 1,
    "AWS::EC2::NatGateway": 1,
    "AWS::EC2::SecurityGroup": 1,
}
# The alarms and the runbook section in docs/deployment.md that each one names.
ALARM_SECTIONS = {
    "FunctionErrorRateAlarm": "Function error rate",
    "ApiServerErrorRateAlarm": "API 5XX rate",
    "PaynetFailureRateAlarm": "Paynet failure rate",
    "FunctionThrottlesAlarm": "Function throttles",
    "FunctionDurationAlarm": "Function duration",
}
TOPIC_ARN = "arn:aws:sns:eu-central-1:123456789012:paynet-otp-check-alarms"
# Parameter values for the monitoring stack, as template.yaml passes them.
MONITORING_PARAMETERS = {
    "NamePrefix": "paynet-otp-check-test",
    "FunctionName": "paynet-otp-check-test-otp-check",
    "FunctionTimeoutSeconds": "15",
    "ApiName": "paynet-otp-check-test",
    "ApiStageName": "prod",
}
# The alarms on a metric math expression, and the functions that the expressions may call.
METRIC_MATH_ALARMS = [
    alarm_id for alarm_id in ALARM_SECTIONS if alarm_id != "FunctionThrottlesAlarm"
]
METRIC_MATH_FUNCTIONS = {"FILL"}


@pytest.fixture(scope="module")
def network() -> dict[str, Any]:
    return load_template(NETWORK_TEMPLATE_PATH)


@pytest.fixture(scope="module")
def network_deployed(network: dict[str, Any]) -> dict[str, Any]:
    return resolve(network)


@pytest.fixture(scope="module")
def monitoring() -> dict[str, Any]:
    return load_template(MONITORING_TEMPLATE_PATH)


@pytest.fixture(scope="module")
def alarms(monitoring: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deployed = resolve(monitoring, MONITORING_PARAMETERS)
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in deployed["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def route_table_of(template: dict[str, Any], subnet_id: str) -> str:
    (table,) = [
        resource["Properties"]["RouteTableId"]["Ref"]
        for resource in of_type(template, "AWS::EC2::SubnetRouteTableAssociation").values()
        if resource["Properties"]["SubnetId"] == {"Ref": subnet_id}
    ]
    return table


def routes_of(template: dict[str, Any], table_id: str) -> list[dict[str, Any]]:
    return [
        resource["Properties"]
        for resource in of_type(template, "AWS::EC2::Route").values()
        if resource["Properties"]["RouteTableId"] == {"Ref": table_id}
    ]


def evaluate_metric_math(expression: str, values: dict[str, float]) -> float:
    """Evaluate a metric math expression of arithmetic and FILL on one period's values.

    None stands for a metric without data in the period.
    """

    def fill(value: float | None, default: float) -> float:
        return default if value is None else value

    python_expression = re.sub(r"\bFILL\(", "fill(", expression)
    result: float = eval(python_expression, {"__builtins__": {}, "fill": fill}, values)  # noqa: S307
    return result


def dashboard_body(monitoring: dict[str, Any]) -> dict[str, Any]:
    """Substitute the dashboard's ${...} references with sample values and parse the JSON."""
    body: str = monitoring["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    parameters = {
        name: MONITORING_PARAMETERS.get(name, str(parameter.get("Default", "")))
        for name, parameter in monitoring["Parameters"].items()
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "AWS::Region":
            return "eu-central-1"
        if name.endswith(".Arn") and name.removesuffix(".Arn") in monitoring["Resources"]:
            return f"arn:aws:cloudwatch:eu-central-1:123456789012:alarm:{name}"
        assert name in parameters, f"the dashboard refers to an unknown ${{{name}}}"
        return parameters[name]

    parsed: dict[str, Any] = json.loads(re.sub(r"\$\{([^}]+)\}", substitute, body))
    return parsed


def widget(body: dict[str, Any], title_start: str) -> dict[str, Any]:
    (found,) = [
        item["properties"]
        for item in body["widgets"]
        if item["properties"]["title"].startswith(title_start)
    ]
    return found


def test_network_resource_types(network_deployed: dict[str, Any]) -> None:
    counts: dict[str, int] = {}
    for resource in network_deployed["Resources"].values():
        counts[resource["Type"]] = counts.get(resource["Type"], 0) + 1
    assert counts == NETWORK_RESOURCE_COUNTS


def test_network_vpc(network: dict[str, Any]) -> None:
    vpc = network["Resources"]["Vpc"]["Properties"]
    assert vpc["CidrBlock"] == {"Ref": "VpcCidrBlock"}
    assert vpc["EnableDnsSupport"] is True
    assert vpc["EnableDnsHostnames"] is True


def test_private_subnets_in_two_zones(network: dict[str, Any]) -> None:
    zones = [
        network["Resources"][subnet_id]["Properties"]["AvailabilityZone"]
        for subnet_id in ("PrivateSubnetA", "PrivateSubnetB")
    ]
    assert zones == [
        {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
        {"Fn::Select": [1, {"Fn::GetAZs": ""}]},
    ]


def test_subnets_without_public_ips(network: dict[str, Any]) -> None:
    for logical_id, subnet in of_type(network, "AWS::EC2::Subnet").items():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False, logical_id


def test_subnet_cidrs_distinct(network: dict[str, Any]) -> None:
    blocks = []
    for subnet in of_type(network, "AWS::EC2::Subnet").values():
        index, cidr = subnet["Properties"]["CidrBlock"]["Fn::Select"]
        assert cidr == {"Fn::Cidr": [{"Ref": "VpcCidrBlock"}, 3, 8]}
        blocks.append(index)
    assert sorted(blocks) == [0, 1, 2]


@pytest.mark.parametrize("vpc_cidr", ["10.0.0.0/16", "192.168.4.0/22"])
def test_subnet_cidrs_fit_vpc(network: dict[str, Any], vpc_cidr: str) -> None:
    # Fn::Cidr with 8 subnet bits carves /24 blocks, and the narrowest VPC that the pattern
    # accepts must hold the three of them.
    assert re.fullmatch(network["Parameters"]["VpcCidrBlock"]["AllowedPattern"], vpc_cidr)
    (_, count, subnet_bits) = network["Resources"]["PublicSubnet"]["Properties"]["CidrBlock"][
        "Fn::Select"
    ][1]["Fn::Cidr"]
    vpc = ipaddress.ip_network(vpc_cidr)
    subnets = list(vpc.subnets(new_prefix=32 - subnet_bits))
    assert len(subnets) >= count


def test_private_route_through_nat(network: dict[str, Any]) -> None:
    for subnet_id in ("PrivateSubnetA", "PrivateSubnetB"):
        table_id = route_table_of(network, subnet_id)
        routes = routes_of(network, table_id)
        assert routes == [
            {
                "RouteTableId": {"Ref": table_id},
                "DestinationCidrBlock": ANYWHERE,
                "NatGatewayId": {"Ref": "NatGateway"},
            }
        ], subnet_id


def test_public_route_through_internet_gateway(network: dict[str, Any]) -> None:
    table_id = route_table_of(network, "PublicSubnet")
    assert routes_of(network, table_id) == [
        {
            "RouteTableId": {"Ref": table_id},
            "DestinationCidrBlock": ANYWHERE,
            "GatewayId": {"Ref": "InternetGateway"},
        }
    ]
    assert table_id != route_table_of(network, "PrivateSubnetA")


def test_nat_gateway_in_public_subnet(network_deployed: dict[str, Any]) -> None:
    nat = network_deployed["Resources"]["NatGateway"]["Properties"]
    assert nat["SubnetId"] == {"Ref": "PublicSubnet"}
    assert nat["AllocationId"] == {"Fn::GetAtt": ["EgressIp", "AllocationId"]}


def test_egress_ip_kept(network: dict[str, Any]) -> None:
    egress_ip = network["Resources"]["EgressIp"]
    assert egress_ip["Properties"]["Domain"] == "vpc"
    assert egress_ip["DeletionPolicy"] == "Retain"
    assert egress_ip["UpdateReplacePolicy"] == "Retain"


def test_existing_egress_ip_used(network: dict[str, Any]) -> None:
    deployed = resolve(network, {"EgressIpAllocationId": EXISTING_ALLOCATION_ID})
    assert "EgressIp" not in deployed["Resources"]
    nat = deployed["Resources"]["NatGateway"]["Properties"]
    assert nat["AllocationId"] == EXISTING_ALLOCATION_ID
    assert deployed["Outputs"]["EgressIpAllocationId"]["Value"] == EXISTING_ALLOCATION_ID
    assert "EgressIp" not in deployed["Outputs"]


def test_security_group_only_outbound_https(network: dict[str, Any]) -> None:
    group = network["Resources"]["FunctionSecurityGroup"]["Properties"]
    assert group["VpcId"] == {"Ref": "Vpc"}
    assert "SecurityGroupIngress" not in group
    (rule,) = group["SecurityGroupEgress"]
    assert rule["IpProtocol"] == "tcp"
    assert rule["FromPort"] == 443
    assert rule["ToPort"] == 443
    assert rule["CidrIp"] == ANYWHERE
    assert rule["Description"]


def test_no_separate_security_group_rules(network: dict[str, Any]) -> None:
    for resource_type in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        assert of_type(network, resource_type) == {}, resource_type


def test_network_outputs(network_deployed: dict[str, Any]) -> None:
    outputs = {name: output["Value"] for name, output in network_deployed["Outputs"].items()}
    assert outputs == {
        "VpcId": {"Ref": "Vpc"},
        "PrivateSubnetIds": {
            "Fn::Join": [",", [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}]]
        },
        "SecurityGroupId": {"Ref": "FunctionSecurityGroup"},
        "NatGatewayId": {"Ref": "NatGateway"},
        "EgressIpAllocationId": {"Fn::GetAtt": ["EgressIp", "AllocationId"]},
        "EgressIp": {"Fn::GetAtt": ["EgressIp", "PublicIp"]},
    }


def test_alarms_present(alarms: dict[str, dict[str, Any]]) -> None:
    assert set(alarms) == set(ALARM_SECTIONS)


def test_alarm_names_unique(alarms: dict[str, dict[str, Any]]) -> None:
    names = [alarm["AlarmName"]["Fn::Sub"] for alarm in alarms.values()]
    assert len(set(names)) == len(names)
    for name in names:
        assert name.startswith("${NamePrefix}-"), name


@pytest.mark.parametrize("alarm_id", ALARM_SECTIONS)
def test_alarm_evaluation(alarms: dict[str, dict[str, Any]], alarm_id: str) -> None:
    alarm = alarms[alarm_id]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == "3"
    assert alarm["DatapointsToAlarm"] == "3"
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("alarm_id", ALARM_SECTIONS)
def test_alarm_without_topic_has_no_actions(
    alarms: dict[str, dict[str, Any]], alarm_id: str
) -> None:
    assert "AlarmActions" not in alarms[alarm_id]
    assert "OKActions" not in alarms[alarm_id]


@pytest.mark.parametrize("alarm_id", ALARM_SECTIONS)
def test_alarm_notifies_topic(monitoring: dict[str, Any], alarm_id: str) -> None:
    deployed = resolve(monitoring, {**MONITORING_PARAMETERS, "AlarmTopicArn": TOPIC_ARN})
    alarm = deployed["Resources"][alarm_id]["Properties"]
    assert alarm["AlarmActions"] == [TOPIC_ARN]
    assert alarm["OKActions"] == [TOPIC_ARN]


@pytest.mark.parametrize(("alarm_id", "section"), ALARM_SECTIONS.items())
def test_alarm_names_runbook_section(
    alarms: dict[str, dict[str, Any]], alarm_id: str, section: str
) -> None:
    assert f'"{section}" in docs/deployment.md' in alarms[alarm_id]["AlarmDescription"]
    headings = re.findall(r"^#+ (.+)$", RUNBOOK_PATH.read_text("utf-8"), flags=re.MULTILINE)
    assert section in headings


@pytest.mark.parametrize("alarm_id", METRIC_MATH_ALARMS)
def test_alarm_metric_math_well_formed(alarms: dict[str, dict[str, Any]], alarm_id: str) -> None:
    alarm = alarms[alarm_id]
    returned = [query for query in alarm["Metrics"] if query["ReturnData"]]
    assert len(returned) == 1
    (expression_query,) = returned
    expression = expression_query["Expression"]
    if isinstance(expression, dict):
        # Fn::Sub puts parameter values into the expression before CloudWatch reads it.
        expression = re.sub(r"\$\{[^}]+\}", "1", expression["Fn::Sub"])
    metric_ids = {query["Id"] for query in alarm["Metrics"] if "MetricStat" in query}
    names = set(re.findall(r"[A-Za-z_]\w*", expression))
    assert names - METRIC_MATH_FUNCTIONS == metric_ids
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            assert query["MetricStat"]["Period"] == 60, query["Id"]
            assert query["ReturnData"] is False, query["Id"]


def metric_stats(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {query["Id"]: query["MetricStat"] for query in alarm["Metrics"] if "MetricStat" in query}


def test_function_error_rate_alarm(alarms: dict[str, dict[str, Any]]) -> None:
    alarm = alarms["FunctionErrorRateAlarm"]
    stats = metric_stats(alarm)
    for metric_id, metric_name in (("errors", "Errors"), ("invocations", "Invocations")):
        metric = stats[metric_id]["Metric"]
        assert metric["Namespace"] == "AWS/Lambda"
        assert metric["MetricName"] == metric_name
        assert metric["Dimensions"] == [
            {"Name": "FunctionName", "Value": MONITORING_PARAMETERS["FunctionName"]}
        ]
        assert stats[metric_id]["Stat"] == "Sum"
    assert alarm["Threshold"] == "5"
    expression = alarm["Metrics"][0]["Expression"]
    assert evaluate_metric_math(expression, {"errors": 3, "invocations": 60}) == 5
    assert evaluate_metric_math(expression, {"errors": None, "invocations": 60}) == 0


def test_api_server_error_rate_alarm(alarms: dict[str, dict[str, Any]]) -> None:
    alarm = alarms["ApiServerErrorRateAlarm"]
    stats = metric_stats(alarm)
    for metric_id, metric_name in (("serverErrors", "5XXError"), ("requests", "Count")):
        metric = stats[metric_id]["Metric"]
        assert metric["Namespace"] == "AWS/ApiGateway"
        assert metric["MetricName"] == metric_name
        assert metric["Dimensions"] == [
            {"Name": "ApiName", "Value": MONITORING_PARAMETERS["ApiName"]},
            {"Name": "Stage", "Value": MONITORING_PARAMETERS["ApiStageName"]},
        ]
    expression = alarm["Metrics"][0]["Expression"]
    assert evaluate_metric_math(expression, {"serverErrors": 1, "requests": 4}) == 25


def test_paynet_failure_rate_alarm(alarms: dict[str, dict[str, Any]]) -> None:
    alarm = alarms["PaynetFailureRateAlarm"]
    stats = metric_stats(alarm)
    assert {stat["Metric"]["MetricName"] for stat in stats.values()} == {
        "FailedChecks",
        "VerifiedChecks",
        "RejectedChecks",
    }
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "PaynetOtpCheck"
        assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": "paynet-otp-check"}]
        assert stat["Stat"] == "Sum"
    assert alarm["Threshold"] == "10"
    expression = alarm["Metrics"][0]["Expression"]
    values = {"failed": 1, "verified": 7, "rejected": 2}
    assert evaluate_metric_math(expression, values) == 10
    assert evaluate_metric_math(expression, {**values, "failed": None}) == 0
    assert (
        evaluate_metric_math(expression, {"failed": 2, "verified": None, "rejected": None}) == 100
    )


def test_paynet_failure_metrics_emitted() -> None:
    # The function counts each outcome under these metric names (src/otp_check/problems.py).
    assert _OUTCOME_METRICS["failed"] == "FailedChecks"
    assert _OUTCOME_METRICS["verified"] == "VerifiedChecks"
    assert _OUTCOME_METRICS["rejected"] == "RejectedChecks"


def test_throttles_alarm(alarms: dict[str, dict[str, Any]]) -> None:
    alarm = alarms["FunctionThrottlesAlarm"]
    assert alarm["Namespace"] == "AWS/Lambda"
    assert alarm["MetricName"] == "Throttles"
    assert alarm["Dimensions"] == [
        {"Name": "FunctionName", "Value": MONITORING_PARAMETERS["FunctionName"]}
    ]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Period"] == 60
    assert alarm["Threshold"] == 1


def test_duration_alarm(monitoring: dict[str, Any], alarms: dict[str, dict[str, Any]]) -> None:
    alarm = alarms["FunctionDurationAlarm"]
    (stat,) = metric_stats(alarm).values()
    assert stat["Metric"]["MetricName"] == "Duration"
    assert stat["Stat"] == "Maximum"
    assert alarm["Threshold"] == "80"
    expression = alarm["Metrics"][0]["Expression"]["Fn::Sub"].replace(
        "${FunctionTimeoutSeconds}", MONITORING_PARAMETERS["FunctionTimeoutSeconds"]
    )
    # 12 of the function's 15 seconds are 80 % of its timeout.
    assert evaluate_metric_math(expression, {"maxDuration": 12_000}) == 80
    assert monitoring["Parameters"]["DurationAlarmPercentOfTimeout"]["Default"] == 80


def test_dashboard_name(monitoring: dict[str, Any]) -> None:
    dashboard = monitoring["Resources"]["Dashboard"]["Properties"]
    assert dashboard["DashboardName"] == {"Ref": "NamePrefix"}


def test_dashboard_check_counts(monitoring: dict[str, Any]) -> None:
    checks = widget(dashboard_body(monitoring), "OTP checks")
    names = [metric[1] for metric in checks["metrics"]]
    assert names[:3] == ["VerifiedChecks", "RejectedChecks", "FailedChecks"]
    for metric in checks["metrics"]:
        assert metric[0] == "PaynetOtpCheck"
        assert metric[2:4] == ["service", "paynet-otp-check"]
        assert metric[1] in _OUTCOME_METRICS.values()
    assert checks["stat"] == "Sum"


def test_dashboard_paynet_latency(monitoring: dict[str, Any]) -> None:
    latency = widget(dashboard_body(monitoring), "Paynet latency")
    assert [metric[1] for metric in latency["metrics"]] == ["PaynetLatency"] * 3
    assert [metric[4]["stat"] for metric in latency["metrics"]] == ["p50", "p90", "p99"]
    # The handler records the latency of each Paynet call in milliseconds under this name.
    assert 'name="PaynetLatency"' in HANDLER_PATH.read_text("utf-8")
    assert "MetricUnit.Milliseconds" in HANDLER_PATH.read_text("utf-8")


def test_dashboard_api_errors(monitoring: dict[str, Any]) -> None:
    api = widget(dashboard_body(monitoring), "API responses")
    by_name = {metric[1]: metric for metric in api["metrics"]}
    assert {"4XXError", "5XXError"} <= set(by_name)
    for name in ("4XXError", "5XXError"):
        assert by_name[name][:6] == [
            "AWS/ApiGateway",
            name,
            "ApiName",
            MONITORING_PARAMETERS["ApiName"],
            "Stage",
            MONITORING_PARAMETERS["ApiStageName"],
        ]
    assert api["stat"] == "Sum"


def test_dashboard_lists_every_alarm(monitoring: dict[str, Any]) -> None:
    alarm_widget = widget(dashboard_body(monitoring), "Alarms")
    assert [arn.rsplit(":", 1)[1] for arn in alarm_widget["alarms"]] == [
        f"{alarm_id}.Arn" for alarm_id in ALARM_SECTIONS
    ]
