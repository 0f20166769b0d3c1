"""Offline stand-ins for what CloudFormation does with a template at deploy time.

``sam_transform`` runs SAM's own translator. ``resolve`` then evaluates the Conditions for a
set of parameter values the way CloudFormation does. It drops the resources and outputs whose
condition is false, picks the branch of each Fn::If and removes AWS::NoValue. It also replaces
Ref and Fn::Split on parameters with their values, and leaves references to resources,
Fn::GetAtt and Fn::Sub as they are. ``rule_violations`` evaluates the template's Rules.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode.cfn_yaml import load
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

NO_VALUE = {"Ref": "AWS::NoValue"}


def load_template(path: Path) -> dict[str, Any]:
    """Load a YAML template with its short-form intrinsic functions in long form."""
    template: dict[str, Any] = json.loads(json.dumps(load(str(path))))
    return template


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """Return the CloudFormation template that the SAM transform generates, built offline."""
    sam_template = copy.deepcopy(template)
    for resource in sam_template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            # The transform accepts only S3 code locations, which `sam deploy` fills in.
            resource["Properties"]["CodeUri"] = "s3://example-bucket/code.zip"
    # The session supplies only the region, for AWS::Region and the partition. Templates here
    # name no managed policy by name, so the translator needs no IAM look-up.
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="eu-central-1"))
    output: dict[str, Any] = translator.translate(
        sam_template, parameter_values={}, get_managed_policy_map=dict
    )
    return output


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Return every parameter's value: the override, else the default.

    CloudFormation passes every value as a string, and a CommaDelimitedList as a list.
    """
    parameters = template.get("Parameters", {})
    unknown = set(overrides) - set(parameters)
    if unknown:
        raise KeyError(f"no such parameters: {sorted(unknown)}")

    values: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if name in overrides:
            value = overrides[name]
        elif "Default" in parameter:
            value = str(parameter["Default"])
        else:
            continue
        if parameter["Type"] == "CommaDelimitedList":
            values[name] = value.split(",")
        else:
            values[name] = value
    return values


def evaluate_conditions(template: dict[str, Any], values: dict[str, Any]) -> dict[str, bool]:
    """Evaluate every condition of the template for the given parameter values."""
    definitions = template.get("Conditions", {})
    results: dict[str, bool] = {}

    def condition(name: str) -> bool:
        if name not in results:
            results[name] = _truth(definitions[name], values, condition)
        return results[name]

    for name in definitions:
        condition(name)
    return results


def resolve(template: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the template as deployed with these parameter values, conditions applied."""
    values = parameter_values(template, overrides or {})
    conditions = evaluate_conditions(template, values)
    resolved = copy.deepcopy(template)

    for section in ("Resources", "Outputs"):
        resolved[section] = {
            logical_id: _resolve_value(entry, values, conditions)
            for logical_id, entry in resolved.get(section, {}).items()
            if conditions.get(entry.get("Condition", ""), True)
        }
    resolved["Conditions"] = conditions
    return resolved


def rule_violations(template: dict[str, Any], overrides: dict[str, str]) -> list[str]:
    """Return the AssertDescription of every failed assertion of the template's Rules."""
    values = parameter_values(template, overrides)
    conditions = evaluate_conditions(template, values)
    violations = []
    for rule in template.get("Rules", {}).values():
        applies = _truth(rule.get("RuleCondition", True), values, conditions.__getitem__)
        if not applies:
            continue
        for assertion in rule["Assertions"]:
            if not _truth(assertion["Assert"], values, conditions.__getitem__):
                violations.append(assertion.get("AssertDescription", json.dumps(assertion)))
    return violations


def _truth(expression: Any, values: dict[str, Any], condition: Any) -> bool:
    if isinstance(expression, bool):
        return expression
    ((function, arguments),) = expression.items()
    if function == "Condition":
        return bool(condition(arguments))
    if function == "Fn::Not":
        return not _truth(arguments[0], values, condition)
    if function == "Fn::And":
        return all(_truth(argument, values, condition) for argument in arguments)
    if function == "Fn::Or":
        return any(_truth(argument, values, condition) for argument in arguments)
    if function == "Fn::Equals":
        left, right = (_operand(argument, values) for argument in arguments)
        return bool(left == right)
    if function == "Fn::Contains":
        haystack, needle = (_operand(argument, values) for argument in arguments)
        return needle in haystack
    raise ValueError(f"unsupported condition function {function}")


def _operand(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return values[value["Ref"]]
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _resolve_value(value: Any, values: dict[str, Any], conditions: dict[str, bool]) -> Any:
    if isinstance(value, list):
        resolved_items = [_resolve_value(item, values, conditions) for item in value]
        return [item for item in resolved_items if item != NO_VALUE]
    if not isinstance(value, dict):
        return value

    if set(value) == {"Fn::If"}:
        name, when_true, when_false = value["Fn::If"]
        branch = when_true if conditions[name] else when_false
        return _resolve_value(branch, values, conditions)
    if set(value) == {"Ref"} and value["Ref"] in values:
        return values[value["Ref"]]
    if set(value) == {"Fn::Split"}:
        delimiter, source = value["Fn::Split"]
        source = _resolve_value(source, values, conditions)
        if isinstance(source, str):
            return source.split(delimiter)
        return {"Fn::Split": [delimiter, source]}

    resolved = {key: _resolve_value(item, values, conditions) for key, item in value.items()}
    return {key: item for key, item in resolved.items() if item != NO_VALUE}
