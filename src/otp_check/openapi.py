"""Generate the OpenAPI document of the HTTP API from the routes and models that serve it.

Usage: ``python -m otp_check.openapi [OUTPUT]`` writes the document to OUTPUT (default
docs/openapi.json), or to standard output when OUTPUT is ``-``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import Server

from otp_check.handler import app
from otp_check.problems import PROBLEM_JSON
from otp_check.responses import UNROUTED_RESPONSES

TITLE = "Paynet OTP check"
VERSION = "1.0.0"
_SCHEMA_REFERENCE_PREFIX = "#/components/schemas/"
_POWERTOOLS_VALIDATION_ERROR = _SCHEMA_REFERENCE_PREFIX + "HTTPValidationError"
DESCRIPTION = """\
Checks a one-time password (OTP) that Paynet sent by SMS before it stores a card, so that \
mobile and web apps never hold the Paynet secret key.

Every error is an RFC 9457 problem details object with `Content-Type: \
application/problem+json`. Its `type` is a URN that starts with \
`urn:paynet-otp-check:problem:` and names the case; the response descriptions list them. \
Every response of the function carries `Cache-Control: no-store`.

API Gateway responds to some requests itself, without calling the function, with a JSON body \
`{"message": "..."}`: 403 `Missing Authentication Token` for any other path or method, 429 \
`Too Many Requests` above the stage's throttling limits, and 502 `Internal server error` \
when the function fails or runs out of time. The components `NotFound` and \
`MethodNotAllowed` describe what the function itself returns for other paths and methods \
when it is invoked directly.

Browsers may call the API from the configured origins only (CORS).
"""


def openapi_document() -> dict[str, Any]:
    """Build the OpenAPI document as a JSON-compatible dictionary."""
    schema = app.get_openapi_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        # The stage's invoke URL, for example the stack output CheckOtpUrl without its path,
        # differs per deployment, so the document names no host.
        servers=[Server(url="/")],
    )
    document: dict[str, Any] = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
    _tidy_responses(document)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    responses = components.setdefault("responses", {})
    for name, response in UNROUTED_RESPONSES.items():
        # Powertools resolves the models of route responses only, so this one is added here.
        content = response["content"][PROBLEM_JSON]
        model = content["model"]
        schemas[model.__name__] = model.model_json_schema()
        reference = {"$ref": _SCHEMA_REFERENCE_PREFIX + model.__name__}
        responses[name] = {
            **response,
            "content": {PROBLEM_JSON: {"schema": reference, "examples": content["examples"]}},
        }
    _drop_unreferenced_schemas(document)
    return document


def _tidy_responses(document: dict[str, Any]) -> None:
    """Sort each operation's responses by status, and remove the 422 that Powertools adds.

    With validation on, Powertools describes a 422 validation error on every route. This API
    reports invalid requests with 400 and uses 422 for a rejected OTP, which the check_otp
    route describes itself. The preflight route takes no input to validate.
    """
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            if _POWERTOOLS_VALIDATION_ERROR in json.dumps(responses.get("422")):
                del responses["422"]
            operation["responses"] = dict(sorted(responses.items()))


def _drop_unreferenced_schemas(document: dict[str, Any]) -> None:
    """Remove the component schemas that no operation or response refers to.

    With validation on, Powertools adds its validation error schemas to every document. This API
    reports validation errors as problem details, so those schemas would mislead.
    """
    components = document["components"]
    schemas: dict[str, Any] = components["schemas"]
    outside_schemas = [
        {key: value for key, value in document.items() if key != "components"},
        {key: value for key, value in components.items() if key != "schemas"},
    ]
    pending = _schema_references(outside_schemas)
    used: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            pending |= _schema_references(schemas[name])
    for name in set(schemas) - used:
        del schemas[name]


def _schema_references(node: Any) -> set[str]:
    """Return the names of the component schemas that ``node`` refers to with ``$ref``."""
    if isinstance(node, dict):
        names = set()
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(_SCHEMA_REFERENCE_PREFIX):
            names.add(reference.removeprefix(_SCHEMA_REFERENCE_PREFIX))
        for value in node.values():
            names |= _schema_references(value)
        return names
    if isinstance(node, list):
        return set().union(*(_schema_references(item) for item in node))
    return set()


def render(document: dict[str, Any]) -> str:
    """Serialize the document the way docs/openapi.json stores it."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "output",
        nargs="?",
        default="docs/openapi.json",
        help="file to write, or - for standard output (default: %(default)s)",
    )
    arguments = parser.parse_args(argv)
    text = render(openapi_document())
    if arguments.output == "-":
        sys.stdout.write(text)
    else:
        Path(arguments.output).write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
