"""template.yaml, samconfig.toml and the sample events in events/, checked without AWS.

Some tests run SAM's own translator (aws-sam-translator, a dependency of cfn-lint) to check the
CloudFormation resources that the transform generates, such as the function's IAM role and the
API stage.
"""

from __future__ import annotations

import base64
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import load

from otp_check.settings import load_settings
from tests.support.cloudformation import resolve, sam_transform

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAMCONFIG_PATH = ROOT / "samconfig.toml"
EVENTS_DIR = ROOT / "events"
ENV_VARS_PATH = EVENTS_DIR / "env.json"
EVENT_PATHS = sorted(path for path in EVENTS_DIR.glob("*.json") if path != ENV_VARS_PATH)

FUNCTION_ID = "OtpCheckFunction"
API_ID = "OtpCheckApi"
LOG_GROUP_ID = "OtpCheckLogGroup"
ACCESS_LOG_GROUP_ID = "OtpCheckApiAccessLogGroup"
TABLE_ID = "AttemptsTable"
CHECK_OTP_PATH = "/v1/card/check_otp"
SECRET_ARN = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
    ":secret:${PaynetSecretName}-??????"
)
TABLE_ARN = {"Fn::GetAtt": [TABLE_ID, "Arn"]}
# Every permission that the function role may grant, as (action, resource) pairs. Anything the
# role grants beyond these makes test_role_grants_only_expected_access fail.
EXPECTED_GRANTS = {
    ("secretsmanager:GetSecretValue", json.dumps({"Fn::Sub": SECRET_ARN})),
    ("dynamodb:UpdateItem", json.dumps(TABLE_ARN)),
    ("dynamodb:PutItem", json.dumps(TABLE_ARN)),
}
ROLE_ID = f"{FUNCTION_ID}Role"
# The AWS managed policies of the function role outside a VPC: the ones that SAM attaches to a
# role that it generates for a function with Tracing: Active.
BASE_MANAGED_POLICIES = [
    {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
    {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"},
]
# The retention periods that AWS::Logs::LogGroup accepts, from its CloudFormation resource schema.
CLOUDWATCH_RETENTION_DAYS = {
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
}  # fmt: skip
VALID_REQUEST = {"user_gsm": "5324818942", "otp_session_id": "123456", "otp_code": "ART2"}
# The variables that load_settings requires, for checks of one other variable.
REQUIRED_SETTINGS = {"PAYNET_SECRET_ID": "paynet/otp-check/test", "ATTEMPTS_TABLE_NAME": "attempts"}
# The numeric attempt-limit parameters and the environment variables they set.
LIMIT_VARIABLES = {
    "MaxFailedChecksPerSession": "MAX_FAILED_CHECKS_PER_SESSION",
    "MaxFailedChecksPerPhone": "MAX_FAILED_CHECKS_PER_PHONE",
    "PhoneLimitWindowSeconds": "PHONE_LIMIT_WINDOW_SECONDS",
    "SessionCounterTtlSeconds": "SESSION_COUNTER_TTL_SECONDS",
}
# The access log fields and the API Gateway $context variables they contain.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "errorMessage": "$context.error.message",
}


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
    return sam_transform(template)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def single_resource(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (resource,) = resources_of_type(template, resource_type).values()
    return resource


def statements_by_sid(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        statement["Sid"]: statement
        for policy in template["Resources"][ROLE_ID]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    }


def access_log_format(template: dict[str, Any]) -> str:
    log_format: str = template["Resources"][API_ID]["Properties"]["AccessLogSetting"]["Format"]
    return log_format


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


def test_api_events_exactly_two(function: dict[str, Any]) -> None:
    assert set(function["Events"]) == {"CheckOtp", "CheckOtpPreflight"}


@pytest.mark.parametrize(
    ("event_id", "method"), [("CheckOtp", "post"), ("CheckOtpPreflight", "options")]
)
def test_api_event_route(function: dict[str, Any], event_id: str, method: str) -> None:
    event = function["Events"][event_id]
    assert event["Type"] == "Api"
    assert event["Properties"]["RestApiId"] == {"Ref": API_ID}
    assert event["Properties"]["Path"] == CHECK_OTP_PATH
    assert event["Properties"]["Method"].lower() == method


def test_api_rest_with_tracing(template: dict[str, Any]) -> None:
    api = template["Resources"][API_ID]
    assert api["Type"] == "AWS::Serverless::Api"
    assert api["Properties"]["StageName"] == {"Ref": "ApiStageName"}
    assert api["Properties"]["TracingEnabled"] is True
    assert template["Parameters"]["ApiStageName"]["Default"] == "prod"


def test_api_routes(transformed: dict[str, Any]) -> None:
    rest_api = single_resource(transformed, "AWS::ApiGateway::RestApi")
    paths = rest_api["Properties"]["Body"]["paths"]
    assert list(paths) == [CHECK_OTP_PATH]
    assert set(paths[CHECK_OTP_PATH]) == {"post", "options"}


@pytest.mark.parametrize("method", ["post", "options"])
def test_api_proxy_integration(transformed: dict[str, Any], method: str) -> None:
    rest_api = single_resource(transformed, "AWS::ApiGateway::RestApi")
    operation = rest_api["Properties"]["Body"]["paths"][CHECK_OTP_PATH][method]
    integration = operation["x-amazon-apigateway-integration"]
    assert integration["type"] == "aws_proxy"
    function_arn = integration["uri"]["Fn::Sub"]
    assert f"${{{FUNCTION_ID}.Arn}}" in function_arn


def test_api_no_cors_configuration(template: dict[str, Any]) -> None:
    # SAM's Cors property would make API Gateway respond to preflight requests with a mock
    # integration, which cannot check the request's origin against CORS_ALLOWED_ORIGINS.
    api = template["Resources"][API_ID]["Properties"]
    assert "Cors" not in api
    assert "GatewayResponses" not in api


def test_lambda_invoked_only_by_api(transformed: dict[str, Any]) -> None:
    permissions = resources_of_type(transformed, "AWS::Lambda::Permission")
    assert len(permissions) == 2
    for permission in permissions.values():
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
        assert permission["Properties"]["Action"] == "lambda:InvokeFunction"
        assert "SourceArn" in permission["Properties"]


def test_api_throttling_from_parameters(template: dict[str, Any]) -> None:
    method_settings = template["Resources"][API_ID]["Properties"]["MethodSettings"]
    assert len(method_settings) == 1
    setting = method_settings[0]
    assert setting["ResourcePath"] == "/*"
    assert setting["HttpMethod"] == "*"
    assert setting["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}


def test_api_throttling_on_stage(transformed: dict[str, Any]) -> None:
    stage = single_resource(transformed, "AWS::ApiGateway::Stage")
    (setting,) = stage["Properties"]["MethodSettings"]
    assert setting["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}


def test_api_throttling_defaults(template: dict[str, Any]) -> None:
    rate = template["Parameters"]["ThrottlingRateLimit"]
    burst = template["Parameters"]["ThrottlingBurstLimit"]
    assert rate["Type"] == "Number"
    assert rate["Default"] == 20
    assert burst["Type"] == "Number"
    assert burst["Default"] == 40


def test_access_log_destination(template: dict[str, Any]) -> None:
    destination = template["Resources"][API_ID]["Properties"]["AccessLogSetting"]["DestinationArn"]
    assert destination == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
        f":log-group:${{{ACCESS_LOG_GROUP_ID}}}"
    }


def test_access_log_group(template: dict[str, Any]) -> None:
    log_group = template["Resources"][ACCESS_LOG_GROUP_ID]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert log_group["DeletionPolicy"] == "Delete"
    assert log_group["UpdateReplacePolicy"] == "Delete"


def test_access_log_format_one_line(template: dict[str, Any]) -> None:
    log_format = access_log_format(template)
    assert "\n" not in log_format
    assert "\r" not in log_format


def test_access_log_format_json(template: dict[str, Any]) -> None:
    fields = json.loads(access_log_format(template))
    assert isinstance(fields, dict)
    assert fields["requestId"] == "$context.requestId"


@pytest.mark.parametrize(("field", "variable"), ACCESS_LOG_FIELDS.items())
def test_access_log_format_field(template: dict[str, Any], field: str, variable: str) -> None:
    fields = json.loads(access_log_format(template))
    assert fields[field] == variable


def test_access_log_on_stage(transformed: dict[str, Any], template: dict[str, Any]) -> None:
    stage = single_resource(transformed, "AWS::ApiGateway::Stage")
    access_log_setting = stage["Properties"]["AccessLogSetting"]
    assert access_log_setting["Format"] == access_log_format(template)
    assert f"${{{ACCESS_LOG_GROUP_ID}}}" in access_log_setting["DestinationArn"]["Fn::Sub"]


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


def test_environment_attempts_table(function: dict[str, Any]) -> None:
    variables = function["Environment"]["Variables"]
    assert variables["ATTEMPTS_TABLE_NAME"] == {"Ref": TABLE_ID}


@pytest.mark.parametrize(
    ("parameter", "variable"),
    [
        *LIMIT_VARIABLES.items(),
        ("AttemptStoreFailureMode", "ATTEMPT_STORE_FAILURE_MODE"),
        ("CorsAllowedOrigins", "CORS_ALLOWED_ORIGINS"),
    ],
)
def test_environment_attempt_settings(
    function: dict[str, Any], parameter: str, variable: str
) -> None:
    assert function["Environment"]["Variables"][variable] == {"Ref": parameter}


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


def test_parameters_described(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        assert parameter.get("Description"), f"parameter {name} has no Description"


def test_number_parameters_bounded(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        if parameter["Type"] != "Number" or "AllowedValues" in parameter:
            continue
        assert "MinValue" in parameter, f"parameter {name} has no MinValue"
        assert "MaxValue" in parameter, f"parameter {name} has no MaxValue"
        assert parameter["MinValue"] <= parameter["Default"], f"{name} default below MinValue"
        assert parameter["Default"] <= parameter["MaxValue"], f"{name} default above MaxValue"


@pytest.mark.parametrize(
    ("name", "default", "minimum", "maximum"),
    [
        ("MaxFailedChecksPerSession", 5, 1, 100),
        ("MaxFailedChecksPerPhone", 10, 1, 1000),
        ("PhoneLimitWindowSeconds", 3600, 60, 86400),
        ("SessionCounterTtlSeconds", 3600, 60, 86400),
        ("ThrottlingRateLimit", 20, 1, 10000),
        ("ThrottlingBurstLimit", 40, 1, 5000),
    ],
)
def test_number_parameter_range(
    template: dict[str, Any], name: str, default: int, minimum: int, maximum: int
) -> None:
    parameter = template["Parameters"][name]
    assert parameter["Type"] == "Number"
    assert parameter["Default"] == default
    assert parameter["MinValue"] == minimum
    assert parameter["MaxValue"] == maximum


@pytest.mark.parametrize(("name", "variable"), LIMIT_VARIABLES.items())
def test_limit_range_accepted_by_settings(
    template: dict[str, Any], name: str, variable: str
) -> None:
    # Every value that CloudFormation accepts must also pass the function's own validation,
    # or the function would fail each request with a configuration error.
    parameter = template["Parameters"][name]
    for value in (parameter["MinValue"], parameter["Default"], parameter["MaxValue"]):
        settings = load_settings({**REQUIRED_SETTINGS, variable: str(value)})
        assert getattr(settings, variable.lower()) == value, f"{name}={value}"


def test_failure_mode_parameter(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["AttemptStoreFailureMode"]
    assert parameter["Type"] == "String"
    assert parameter["Default"] == "closed"
    assert parameter["AllowedValues"] == ["closed", "open"]


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_failure_mode_accepted_by_settings(mode: str) -> None:
    settings = load_settings({**REQUIRED_SETTINGS, "ATTEMPT_STORE_FAILURE_MODE": mode})
    assert settings.attempt_store_failure_mode == mode


def test_cors_origins_parameter(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["CorsAllowedOrigins"]
    assert parameter["Type"] == "String"
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"]) is not None


@pytest.mark.parametrize(
    ("origins", "allowed"),
    [
        ("", True),
        ("https://app.example.com", True),
        ("https://app.example.com:8443", True),
        ("https://app.example.com,https://admin.example.com", True),
        ("http://localhost:3000", True),
        ("http://127.0.0.1:5173", True),
        ("*", False),
        ("https://*", False),
        ("https://*.example.com", False),
        ("https://app.example.com,*", False),
        ("null", False),
        ("http://app.example.com", False),
        ("https://app.example.com/", False),
        ("https://app.example.com/login", False),
        ("https://App.example.com", False),
        ("https://app.example.com, https://admin.example.com", False),
        ("https://app.example.com,", False),
        (",https://app.example.com", False),
        ("app.example.com", False),
    ],
)
def test_cors_origins_pattern(template: dict[str, Any], origins: str, allowed: bool) -> None:
    pattern = template["Parameters"]["CorsAllowedOrigins"]["AllowedPattern"]
    assert (re.fullmatch(pattern, origins) is not None) == allowed


@pytest.mark.parametrize(
    "origins",
    [
        "https://app.example.com",
        "https://app.example.com:8443,https://admin.example.com",
        "http://localhost:3000",
    ],
)
def test_cors_origins_accepted_by_settings(template: dict[str, Any], origins: str) -> None:
    pattern = template["Parameters"]["CorsAllowedOrigins"]["AllowedPattern"]
    assert re.fullmatch(pattern, origins) is not None
    settings = load_settings({**REQUIRED_SETTINGS, "CORS_ALLOWED_ORIGINS": origins})
    assert settings.cors_allowed_origins == frozenset(origins.split(","))


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


def test_function_uses_own_role(template: dict[str, Any], function: dict[str, Any]) -> None:
    assert function["Role"] == {"Fn::GetAtt": [ROLE_ID, "Arn"]}
    # With Role set, SAM would ignore Policies, so none may be given.
    assert "Policies" not in function
    assert template["Resources"][ROLE_ID]["Type"] == "AWS::IAM::Role"


def test_policy_statements(template: dict[str, Any]) -> None:
    policies = template["Resources"][ROLE_ID]["Properties"]["Policies"]
    assert len(policies) == 1
    assert set(statements_by_sid(template)) == {"ReadPaynetSecretKey", "CountFailedChecks"}


def test_policy_reads_one_secret(template: dict[str, Any]) -> None:
    statement = statements_by_sid(template)["ReadPaynetSecretKey"]
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"]
    assert as_list(statement["Resource"]) == [{"Fn::Sub": SECRET_ARN}]


def test_policy_writes_attempts_table(template: dict[str, Any]) -> None:
    statement = statements_by_sid(template)["CountFailedChecks"]
    assert statement["Effect"] == "Allow"
    assert sorted(as_list(statement["Action"])) == ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    assert as_list(statement["Resource"]) == [TABLE_ARN]


def test_role_managed_policies(transformed: dict[str, Any]) -> None:
    # With the default parameters, the function runs outside a VPC. test_template_modes.py
    # checks the VPC modes.
    role = resolve(transformed)["Resources"][ROLE_ID]["Properties"]
    assert role["ManagedPolicyArns"] == BASE_MANAGED_POLICIES


def test_role_assumed_only_by_lambda(transformed: dict[str, Any]) -> None:
    role = transformed["Resources"][ROLE_ID]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": ["lambda.amazonaws.com"]}
    assert as_list(statement["Action"]) == ["sts:AssumeRole"]


def test_role_grants_only_expected_access(transformed: dict[str, Any]) -> None:
    role = transformed["Resources"][ROLE_ID]["Properties"]
    statements = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    grants = set()
    for statement in statements:
        # NotAction and NotResource grant everything except what they list.
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
        assert statement["Effect"] == "Allow", statement
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                grants.add((action, json.dumps(resource)))
    assert grants == EXPECTED_GRANTS


def test_role_grants_no_wildcards(transformed: dict[str, Any]) -> None:
    role = transformed["Resources"][ROLE_ID]["Properties"]
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"wildcard action {action}"
            for resource in as_list(statement["Resource"]):
                assert resource != "*", "wildcard resource"
                # A table ARN followed by /index/* or /stream/* would reach past the table.
                assert "/index" not in json.dumps(resource), f"index resource {resource}"
                assert "/stream" not in json.dumps(resource), f"stream resource {resource}"


def test_role_no_other_policies(transformed: dict[str, Any]) -> None:
    # A separate policy resource could attach further permissions to the function role.
    for resource_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        assert resources_of_type(transformed, resource_type) == {}, resource_type


def test_attempts_table_resource(template: dict[str, Any]) -> None:
    table = template["Resources"][TABLE_ID]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Delete"
    assert table["UpdateReplacePolicy"] == "Delete"
    assert "TableName" not in table["Properties"]


def test_attempts_table_on_demand(template: dict[str, Any]) -> None:
    properties = template["Resources"][TABLE_ID]["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in properties


def test_attempts_table_key_schema(template: dict[str, Any]) -> None:
    properties = template["Resources"][TABLE_ID]["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]


def test_attempts_table_no_indexes(template: dict[str, Any]) -> None:
    # The function role's grant covers the table ARN only, not index ARNs.
    properties = template["Resources"][TABLE_ID]["Properties"]
    assert "GlobalSecondaryIndexes" not in properties
    assert "LocalSecondaryIndexes" not in properties


def test_attempts_table_ttl(template: dict[str, Any]) -> None:
    ttl = template["Resources"][TABLE_ID]["Properties"]["TimeToLiveSpecification"]
    assert ttl["AttributeName"] == "expires_at"
    assert ttl["Enabled"] is True


def test_attempts_table_encryption(template: dict[str, Any]) -> None:
    encryption = template["Resources"][TABLE_ID]["Properties"]["SSESpecification"]
    assert encryption["SSEEnabled"] is True


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    url = outputs["CheckOtpUrl"]["Value"]["Fn::Sub"]
    assert url.startswith(f"https://${{{API_ID}}}.execute-api.${{AWS::Region}}.")
    assert url.endswith("/${ApiStageName}" + CHECK_OTP_PATH)
    assert outputs["OtpCheckFunctionArn"]["Value"] == {"Fn::GetAtt": [FUNCTION_ID, "Arn"]}
    assert outputs["OtpCheckLogGroupName"]["Value"] == {"Ref": LOG_GROUP_ID}
    assert outputs["OtpCheckApiAccessLogGroupName"]["Value"] == {"Ref": ACCESS_LOG_GROUP_ID}
    assert outputs["AttemptsTableName"]["Value"] == {"Ref": TABLE_ID}


def test_env_json_variables_declared(function: dict[str, Any]) -> None:
    # `sam local invoke --env-vars` ignores variables that the template does not declare.
    env_vars = json.loads(ENV_VARS_PATH.read_text("utf-8"))
    declared = function["Environment"]["Variables"]
    assert list(env_vars) == [FUNCTION_ID]
    for name, value in env_vars[FUNCTION_ID].items():
        assert name in declared, f"{name} in {ENV_VARS_PATH.name} is not declared in template.yaml"
        assert isinstance(value, str), f"{name} in {ENV_VARS_PATH.name} must be a string"


def test_env_json_declares_attempt_settings() -> None:
    env_vars = json.loads(ENV_VARS_PATH.read_text("utf-8"))[FUNCTION_ID]
    assert env_vars["ATTEMPTS_TABLE_NAME"] == "paynet-otp-check-attempts-local"
    assert env_vars["CORS_ALLOWED_ORIGINS"] == ""


def test_env_json_matches_parameter_defaults(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    # The local values follow the deployed defaults, except the Paynet URL, which points at the
    # local Paynet sandbox, and the secret, which is a local one so that a local run never
    # replaces the test stack's key.
    env_vars = json.loads(ENV_VARS_PATH.read_text("utf-8"))[FUNCTION_ID]
    assert env_vars["PAYNET_SECRET_ID"] == "paynet/otp-check/local"
    declared = function["Environment"]["Variables"]
    for name, value in env_vars.items():
        # test_env_json_variables_declared reports undeclared variables.
        reference = declared.get(name)
        if name in ("PAYNET_BASE_URL", "PAYNET_SECRET_ID"):
            continue
        if not isinstance(reference, dict) or "Ref" not in reference:
            continue
        if reference["Ref"] not in template["Parameters"]:
            continue
        default = template["Parameters"][reference["Ref"]]["Default"]
        assert value == str(default), f"{name} in {ENV_VARS_PATH.name} differs from the default"


def test_env_json_passes_settings() -> None:
    env_vars = json.loads(ENV_VARS_PATH.read_text("utf-8"))[FUNCTION_ID]
    settings = load_settings(env_vars)
    assert settings.attempts_table_name == "paynet-otp-check-attempts-local"
    assert settings.cors_allowed_origins == frozenset()


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
