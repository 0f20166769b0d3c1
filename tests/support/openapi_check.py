"""Check a response against docs/openapi.json: status, media type, required headers, body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from tests.support.aws import REPOSITORY_ROOT

OPENAPI_PATH = REPOSITORY_ROOT / "docs" / "openapi.json"


@cache
def load_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_PATH.read_text("utf-8"))
    return document


def schema_validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """Build a validator for a schema of the document, whose $refs point into its components."""
    document = load_document()
    return Draft202012Validator({**schema, "components": document["components"]})


def undocumented_parts(
    *,
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> list[str]:
    """List how one response to ``method`` ``path`` departs from the document.

    Returns an empty list when it conforms. ``headers`` are looked up by case-insensitive name.
    """
    operation = load_document()["paths"][path][method.lower()]
    documented = operation["responses"].get(str(status))
    if documented is None:
        return [f"status {status} is not documented for {method} {path}"]
    return departures_from(documented, status=status, headers=headers, body=body)


def departures_from(
    documented: Mapping[str, Any], *, status: int, headers: Mapping[str, str], body: bytes
) -> list[str]:
    """List how a response departs from the documented response object ``documented``."""
    lower_headers = {name.lower(): value for name, value in headers.items()}
    problems = []
    for name, header in documented.get("headers", {}).items():
        value = lower_headers.get(name.lower())
        if value is None:
            if header.get("required"):
                problems.append(f"required header {name} is missing")
            continue
        problems.extend(
            f"header {name}: {error.message}"
            for error in schema_validator(header["schema"]).iter_errors(value)
        )

    content = documented.get("content") or {}
    if not content:
        if body:
            problems.append(f"status {status} is documented without a body, but one was sent")
        return problems
    media_type = lower_headers.get("content-type", "").split(";", 1)[0].strip()
    if media_type not in content:
        return [*problems, f"media type {media_type!r} is not documented for status {status}"]
    document = json.loads(body)
    problems.extend(
        f"body: {error.message}"
        for error in schema_validator(content[media_type]["schema"]).iter_errors(document)
    )
    return problems
