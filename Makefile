# Set-up, local run and checks. `make run` and `make test` install what they need first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# checkov pins packages that conflict with the dev tools in .venv, so it has a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml
EVENT ?= events/check_otp.json
# The application template and the nested templates that it deploys.
TEMPLATES := template.yaml stacks/network.yaml stacks/monitoring.yaml

# SAM CLI sends usage telemetry unless told not to.
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= eu-central-1

.PHONY: install run test lint typecheck pytest template-check checkov build clean
.PHONY: bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml src/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r src/requirements.txt -e '.[dev]'
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

## run: invoke the function on EVENT against the Paynet sandbox and a local Secrets Manager
run: install
	$(BIN)/python -m tests.support.local_run $(EVENT)

.PHONY: serve openapi browser
PORT ?= 3000

## serve: serve the function on http://127.0.0.1:PORT, backed by the sandbox, until Ctrl-C
serve: install
	$(BIN)/python -m tests.support.local_api --port $(PORT)

## openapi: write docs/openapi.json from the routes and models
openapi: install
	$(BIN)/python -m otp_check.openapi docs/openapi.json

## browser: install Debian's Chromium for the browser test, where this machine allows it
browser:
	./.ci/install-chromium-if-possible

## test: every check, in order: ruff, mypy, pytest, template checks
test: install browser lint typecheck pytest template-check

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

## template-check: lint and check every template, build the function and check the package
# cfn-lint runs its own rules and the serverless rules of cfn-lint-serverless.
template-check: install $(CHECKOV_VENV)/.installed
	for template in $(TEMPLATES); do \
		$(BIN)/sam validate --lint --template $$template || exit 1; \
	done
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules --template $(TEMPLATES)
	$(CHECKOV)
	PATH="$(CURDIR)/$(BIN):$$PATH" ./.ci/sam-build-and-check

## checkov: check the templates, with the skipped checks and their reasons in .checkov.yaml
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV)

## build: `sam build` of the function and the nested templates
build: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/sam build

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis

## bench: time the function against the loopback stand-ins and print each goal's status
bench: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.run
