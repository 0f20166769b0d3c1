"""template.yaml, samconfig.toml and the sample events in events/, checked without AWS.

Some tests run SAM's own translator (aws-sam-translator, a dependency of cfn-lint) to check the
CloudFormation resources that the transform generates, such as the function's IAM role.
"""

from __future__ import annotations

import base64
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode.cfn_yaml import load
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAMCONFIG_PATH = ROOT / "samconfig.toml"
EVENTS_DIR = ROOT / "events"
ENV_VARS_PATH = EVENTS_DIR / "env.json"
EVENT_PATHS = sorted(path for path in EVENTS_DIR.glob("*.json") if path != ENV_VARS_PATH)

FUNCTION_ID = "OtpCheckFunction"
API_ID = "OtpCheckApi"
LOG_GROUP_ID = "OtpCheckLogGroup"
CHECK_OTP_PATH = "/v1/card/check_otp"
SECRET_ARN = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
    ":secret:${PaynetSecretName}-??????"
)
# SAM attaches AWSLambdaBasicExecutionRole to every function role, and AWSXrayWriteOnlyAccess to
# the roles of functions with Tracing: Active.
SAM_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
# The retention periods that AWS::Logs::LogGroup accepts, from its CloudFormation resource schema.
CLOUDWATCH_RETENTION_DAYS = {
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
}  # fmt: skip
VALID_REQUEST = {"user_gsm": "5324818942", "otp_session_id": "123456", "otp_code": "ART2"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = load(str(TEMPLATE_PATH))
    return loaded


@pytest.fixture(scope="module")
def function(template: dict[str, Any]) -> dict[str, Any]:
    """The function's properties on top of Globals.Function.

    Each property replaces the global one whole. SAM merges maps and lists more finely, which
    these checks do not need.
    """
    properties = dict(template.get("Globals", {}).get("Function", {}))
    properties.update(template["Resources"][FUNCTION_ID]["Properties"])
    return properties


@pytest.fixture(scope="module")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template that the SAM transform generates, built offline."""
    sam_template = json.loads(json.dumps(template))
    # The transform accepts only S3 code locations, which `sam deploy` fills in after upload.
    sam_template["Resources"][FUNCTION_ID]["Properties"]["CodeUri"] = "s3://example-bucket/code.zip"
    # The session supplies only the region, for AWS::Region and the partition. SAM CLI resolves
    # policies given by name through IAM. This template names none, so an empty map is enough.
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="eu-central-1"))
    output: dict[str, Any] = translator.translate(
        sam_template, parameter_values={}, get_managed_policy_map=dict
    )
    return output


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_function_runtime(function: dict[str, Any]) -> None:
    assert function["Runtime"] == "python3.13"
    assert function["Handler"] == "otp_check.handler.lambda_handler"
    assert function["CodeUri"] == "src/"


def test_function_architecture(function: dict[str, Any]) -> None:
    assert function["Architectures"] == ["arm64"]


def test_function_tracing_active(function: dict[str, Any]) -> None:
    assert function["Tracing"] == "Active"


def test_function_limits(function: dict[str, Any]) -> None:
    assert function["Timeout"] == 15
    assert function["MemorySize"] == 512


def test_paynet_timeouts_below_function_timeout(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    read_timeout = template["Parameters"]["PaynetTimeoutSeconds"]
    connect_timeout = template["Parameters"]["PaynetConnectTimeoutSeconds"]
    assert read_timeout["Default"] == 10
    assert read_timeout["MaxValue"] < function["Timeout"]
    assert connect_timeout["Default"] == 3
    assert connect_timeout["MaxValue"] < function["Timeout"]


def test_logging_config_json(function: dict[str, Any]) -> None:
    logging_config = function["LoggingConfig"]
    assert logging_config["LogFormat"] == "JSON"
    assert logging_config["ApplicationLogLevel"] == {"Ref": "LogLevel"}
    assert logging_config["SystemLogLevel"] == "WARN"


def test_log_level_parameter(template: dict[str, Any]) -> None:
    log_level = template["Parameters"]["LogLevel"]
    assert log_level["Default"] == "INFO"
    assert log_level["AllowedValues"] == ["DEBUG", "INFO", "WARN", "ERROR"]


def test_log_group_used_by_function(template: dict[str, Any], function: dict[str, Any]) -> None:
    log_group = template["Resources"][LOG_GROUP_ID]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": LOG_GROUP_ID}


def test_log_group_retention(template: dict[str, Any]) -> None:
    log_group = template["Resources"][LOG_GROUP_ID]
    retention = template["Parameters"]["LogRetentionInDays"]
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert retention["Default"] == 30
    assert set(retention["AllowedValues"]) <= CLOUDWATCH_RETENTION_DAYS
    assert retention["Default"] in retention["AllowedValues"]


def test_log_group_name_matches_function(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    # Both names are Fn::Sub strings, so equal strings give equal names after substitution.
    log_group_name = template["Resources"][LOG_GROUP_ID]["Properties"]["LogGroupName"]
    assert log_group_name == {"Fn::Sub": "/aws/lambda/" + function["FunctionName"]["Fn::Sub"]}


def test_api_event_route(function: dict[str, Any]) -> None:
    events = function["Events"]
    assert len(events) == 1
    (event,) = events.values()
    assert event["Type"] == "Api"
    assert event["Properties"]["RestApiId"] == {"Ref": API_ID}
    assert event["Properties"]["Path"] == CHECK_OTP_PATH
    assert event["Properties"]["Method"].lower() == "post"


def test_api_rest_with_tracing(template: dict[str, Any]) -> None:
    api = template["Resources"][API_ID]
    assert api["Type"] == "AWS::Serverless::Api"
    assert api["Properties"]["StageName"] == {"Ref": "ApiStageName"}
    assert api["Properties"]["TracingEnabled"] is True
    assert template["Parameters"]["ApiStageName"]["Default"] == "prod"


def test_api_proxy_integration(transformed: dict[str, Any]) -> None:
    (rest_api,) = resources_of_type(transformed, "AWS::ApiGateway::RestApi").values()
    paths = rest_api["Properties"]["Body"]["paths"]
    assert list(paths) == [CHECK_OTP_PATH]
    assert list(paths[CHECK_OTP_PATH]) == ["post"]
    integration = paths[CHECK_OTP_PATH]["post"]["x-amazon-apigateway-integration"]
    assert integration["type"] == "aws_proxy"


def test_api_single_stage(transformed: dict[str, Any]) -> None:
    stages = resources_of_type(transformed, "AWS::ApiGateway::Stage")
    deployments = resources_of_type(transformed, "AWS::ApiGateway::Deployment")
    assert len(stages) == 1
    # A StageName on the deployment would create a second stage, named "Stage".
    for deployment in deployments.values():
        assert "StageName" not in deployment["Properties"]


def test_environment_from_parameters(function: dict[str, Any]) -> None:
    variables = function["Environment"]["Variables"]
    assert variables["PAYNET_BASE_URL"] == {"Ref": "PaynetBaseUrl"}
    assert variables["PAYNET_SECRET_ID"] == {"Ref": "PaynetSecretName"}
    assert variables["PAYNET_TIMEOUT_SECONDS"] == {"Ref": "PaynetTimeoutSeconds"}
    assert variables["PAYNET_CONNECT_TIMEOUT_SECONDS"] == {"Ref": "PaynetConnectTimeoutSeconds"}
    assert variables["PAYNET_SECRET_MAX_AGE_SECONDS"] == {"Ref": "PaynetSecretMaxAgeSeconds"}


def test_environment_fixed_values(function: dict[str, Any]) -> None:
    variables = function["Environment"]["Variables"]
    assert variables["PAYNET_CA_BUNDLE"] == ""
    assert variables["POWERTOOLS_SERVICE_NAME"] == "paynet-otp-check"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "PaynetOtpCheck"


def test_parameter_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["PaynetBaseUrl"]["Default"] == "https://pts-api.paynet.com.tr"
    assert parameters["PaynetSecretName"]["Default"] == "paynet/otp-check/test"
    assert parameters["PaynetSecretMaxAgeSeconds"]["Default"] == 300


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://pts-api.paynet.com.tr", True),
        ("https://api.paynet.com.tr", True),
        ("https://api.paynet.com.tr/", True),
        ("https://localhost:8443", True),
        ("http://api.paynet.com.tr", False),
        ("https://api.paynet.com.tr?debug=1", False),
        ("https://user:pass@api.paynet.com.tr", False),
        ("api.paynet.com.tr", False),
    ],
)
def test_base_url_pattern(template: dict[str, Any], url: str, allowed: bool) -> None:
    pattern = template["Parameters"]["PaynetBaseUrl"]["AllowedPattern"]
    assert (re.fullmatch(pattern, url) is not None) == allowed


def test_policy_reads_one_secret(function: dict[str, Any]) -> None:
    policies = function["Policies"]
    assert len(policies) == 1
    statements = policies[0]["Statement"]
    assert len(statements) == 1
    statement = statements[0]
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"]
    assert as_list(statement["Resource"]) == [{"Fn::Sub": SECRET_ARN}]


def test_role_grants_only_secret_read(transformed: dict[str, Any]) -> None:
    role = transformed["Resources"][f"{FUNCTION_ID}Role"]["Properties"]
    assert set(role["ManagedPolicyArns"]) == SAM_MANAGED_POLICIES
    statements = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    assert len(statements) == 1
    assert as_list(statements[0]["Action"]) == ["secretsmanager:GetSecretValue"]
    resources = as_list(statements[0]["Resource"])
    assert resources == [{"Fn::Sub": SECRET_ARN}]
    assert "*" not in resources


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    url = outputs["CheckOtpUrl"]["Value"]["Fn::Sub"]
    assert url.startswith(f"https://${{{API_ID}}}.execute-api.${{AWS::Region}}.")
    assert url.endswith("/${ApiStageName}" + CHECK_OTP_PATH)
    assert outputs["OtpCheckFunctionArn"]["Value"] == {"Fn::GetAtt": [FUNCTION_ID, "Arn"]}
    assert outputs["OtpCheckLogGroupName"]["Value"] == {"Ref": LOG_GROUP_ID}


def test_env_json_variables_declared(function: dict[str, Any]) -> None:
    # `sam local invoke --env-vars` ignores variables that the template does not declare.
    env_vars = json.loads(ENV_VARS_PATH.read_text("utf-8"))
    declared = function["Environment"]["Variables"]
    assert list(env_vars) == [FUNCTION_ID]
    for name, value in env_vars[FUNCTION_ID].items():
        assert name in declared, f"{name} in {ENV_VARS_PATH.name} is not declared in template.yaml"
        assert isinstance(value, str), f"{name} in {ENV_VARS_PATH.name} must be a string"


def test_samconfig_environments() -> None:
    samconfig = tomllib.loads(SAMCONFIG_PATH.read_text("utf-8"))
    assert samconfig["test"]["global"]["parameters"]["stack_name"] == "paynet-otp-check-test"
    assert samconfig["live"]["global"]["parameters"]["stack_name"] == "paynet-otp-check-live"
    assert samconfig["live"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert "stack_name" not in samconfig["default"].get("deploy", {}).get("parameters", {})


@pytest.mark.parametrize(
    ("environment", "base_url", "secret_name"),
    [
        ("test", "https://pts-api.paynet.com.tr", "paynet/otp-check/test"),
        ("live", "https://api.paynet.com.tr", "paynet/otp-check/live"),
    ],
)
def test_samconfig_overrides(
    template: dict[str, Any], environment: str, base_url: str, secret_name: str
) -> None:
    samconfig = tomllib.loads(SAMCONFIG_PATH.read_text("utf-8"))
    deploy = samconfig[environment]["deploy"]["parameters"]
    overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])
    for name in overrides:
        assert name in template["Parameters"], f"{environment} overrides unknown parameter {name}"
    assert overrides["PaynetBaseUrl"] == base_url
    assert overrides["PaynetSecretName"] == secret_name
    assert overrides["LogLevel"] in template["Parameters"]["LogLevel"]["AllowedValues"]


def test_events_present() -> None:
    names = {path.name for path in EVENT_PATHS}
    expected = {
        "check_otp.json",
        "check_otp_wrong_code.json",
        "check_otp_invalid_gsm.json",
        "check_otp_base64.json",
        "check_otp_empty_body.json",
        "unknown_route.json",
    }
    assert expected <= names


@pytest.mark.parametrize("path", EVENT_PATHS, ids=lambda path: path.name)
def test_event_shape(path: Path) -> None:
    event = json.loads(path.read_text("utf-8"))
    assert isinstance(event, dict)
    assert isinstance(event["httpMethod"], str)
    assert event["path"].startswith("/")
    assert isinstance(event["headers"], dict)
    assert isinstance(event["requestContext"]["requestId"], str)
    assert event["requestContext"]["requestId"]
    assert "body" in event
    assert event["body"] is None or isinstance(event["body"], str)
    assert isinstance(event["isBase64Encoded"], bool)


@pytest.mark.parametrize("path", EVENT_PATHS, ids=lambda path: path.name)
def test_event_request_context(path: Path) -> None:
    event = json.loads(path.read_text("utf-8"))
    context = event["requestContext"]
    assert context["httpMethod"] == event["httpMethod"]
    assert context["resourcePath"] == event["resource"]
    assert context["path"] == f"/{context['stage']}{event['path']}"


def test_event_request_ids_unique() -> None:
    request_ids = [
        json.loads(path.read_text("utf-8"))["requestContext"]["requestId"] for path in EVENT_PATHS
    ]
    assert len(set(request_ids)) == len(request_ids)


@pytest.mark.parametrize(
    ("name", "expected_request"),
    [
        ("check_otp.json", VALID_REQUEST),
        ("check_otp_wrong_code.json", {**VALID_REQUEST, "otp_code": "WRONG9"}),
        ("check_otp_invalid_gsm.json", {**VALID_REQUEST, "user_gsm": "1234"}),
        ("check_otp_base64.json", {**VALID_REQUEST, "user_gsm": "+90 532 481 89 42"}),
    ],
)
def test_check_otp_event_body(name: str, expected_request: dict[str, str]) -> None:
    event = json.loads((EVENTS_DIR / name).read_text("utf-8"))
    body = event["body"]
    if event["isBase64Encoded"]:
        body = base64.b64decode(body, validate=True).decode("utf-8")
    assert event["httpMethod"] == "POST"
    assert event["path"] == CHECK_OTP_PATH
    assert event["headers"]["Content-Type"] == "application/json"
    assert json.loads(body) == expected_request


def test_base64_event_encoded() -> None:
    event = json.loads((EVENTS_DIR / "check_otp_base64.json").read_text("utf-8"))
    assert event["isBase64Encoded"] is True


def test_empty_body_event() -> None:
    event = json.loads((EVENTS_DIR / "check_otp_empty_body.json").read_text("utf-8"))
    assert event["httpMethod"] == "POST"
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


def test_unknown_route_event() -> None:
    event = json.loads((EVENTS_DIR / "unknown_route.json").read_text("utf-8"))
    assert event["httpMethod"] == "GET"
    assert event["path"] == "/v1/card/unknown"
    assert event["resource"] == "/{proxy+}"
    assert event["pathParameters"] == {"proxy": "v1/card/unknown"}
