# Opsdeck: `make run` starts the portal, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test pages-check cluster-test fuzz lint format bench services-check browser pdf-tools promtool clean

# Stamp files: requirements are installed again only when they change.
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.base-installed: requirements/base.txt | $(PY)
	$(PIP) install --quiet -r requirements/base.txt
	@touch $@

$(VENV)/.test-installed: requirements/base.txt requirements/test.txt | $(PY)
	$(PIP) install --quiet -r requirements/test.txt
	@touch $@ $(VENV)/.base-installed

run: $(VENV)/.base-installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py setup_roles
	$(PY) manage.py setup_periodic_tasks
	$(PY) manage.py ensure_admin
	$(PY) manage.py runportal --host $(HOST) --port $(PORT)

# The single sign-on tests start a real OpenID Connect provider (tests/oidc_provider/provider.js, npm's oidc-provider).
OIDC_PROVIDER := tests/oidc_provider
$(OIDC_PROVIDER)/node_modules/.installed: $(OIDC_PROVIDER)/package.json $(OIDC_PROVIDER)/package-lock.json
	npm ci --prefix $(OIDC_PROVIDER) --no-audit --no-fund --silent
	@touch $@

# Browser tests drive Debian's chromium; install it when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The PDF report tests read the PDFs back with poppler's pdftotext, as a reader copies their text.
pdf-tools:
	@command -v pdftotext >/dev/null 2>&1 || { \
		echo "Installing Debian poppler-utils for the PDF report tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; }

# The alerting rules (deploy/prometheus) are checked and unit-tested with promtool, from Debian's prometheus package;
# install it when missing (without its recommended node exporter, which the tests do not need).
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
		echo "Installing Debian prometheus (promtool) for the alerting rule tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

services-check: $(VENV)/.test-installed
	$(PY) tests/check_services.py

# The suite in TEST_WORKERS parallel pytest-xdist workers, each with its own database, Redis database and data
# directory (project/settings/test.py); `python -m pytest <files>` runs serially.
TEST_WORKERS ?= 2
test: $(VENV)/.test-installed browser pdf-tools promtool services-check $(OIDC_PROVIDER)/node_modules/.installed
	$(PY) -m pytest -n $(TEST_WORKERS) --dist load -p no:cacheprovider

# Every main page for every role in headless Chromium at 1366 and 390 px: screenshots in var/screenshots/, no
# sideways scroll, no console error or failed request, axe-core clean, the sidebar the role may use; the admin's main
# lists; every control of the main pages reached by Tab and showing its focus; then a new administrator's walk
# through every area, typing one address. Every test marked `pages`. A few minutes.
pages-check: $(VENV)/.test-installed browser services-check
	$(PY) -m pytest -m pages -p no:cacheprovider

# The rehearsal of several hosts (README "Several hosts"): as root, six network namespaces with their own
# PostgreSQL, Redis, portals, workers and beat; removed afterwards, even when a test fails. About a minute.
cluster-test: $(VENV)/.test-installed services-check
	$(PY) -m pytest tests/cluster -m cluster -p no:cacheprovider

# A long schema-fuzzing campaign over every API operation (the suite runs the same test with a few examples),
# then sequences that follow the schema's links (create, then read/cancel/delete what was created).
FUZZ_EXAMPLES ?= 150
FUZZ_SCENARIOS ?= 300
FUZZ_STEPS ?= 10
fuzz: $(VENV)/.test-installed services-check
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SCENARIOS=$(FUZZ_SCENARIOS) FUZZ_STEPS=$(FUZZ_STEPS) \
		$(PY) -m pytest tests/core/test_fuzz_api.py -p no:cacheprovider -q

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(VENV)/.test-installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Every benchmark, one after the other; fails if one fails (a missed target is not a failure).
bench: $(VENV)/.test-installed
	$(PY) benchmarks/run.py
	$(PY) benchmarks/load.py
	$(PY) benchmarks/audit.py
	$(PY) benchmarks/quantum.py
	$(PY) benchmarks/registry.py
	$(PY) benchmarks/backups.py
	$(PY) benchmarks/compliance.py
	$(PY) benchmarks/lists.py

clean:
	rm -rf $(VENV) var/static var/test
