# bdisc: every target installs what it needs (fresh Debian + Python 3.11).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-out

EMBED_REPLICAS ?= 2

.PHONY: install demo test lint typecheck validate constraints unit bench clean stack stack-down stack-status proto

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON): apt-get install -y python3.11 python3.11-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV) || { apt-get install -y python3.11-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[ml,discovery,platform,dev]'
	$(MAKE) proto
	touch $@

# gRPC stubs are generated, never edited or committed: into services/bdisc/v1/.
PROTOS := $(wildcard proto/bdisc/v1/*.proto)
proto: $(PROTOS)
	mkdir -p services/bdisc/v1
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=services --pyi_out=services \
		--grpc_python_out=services $(PROTOS)
	touch services/bdisc/v1/__init__.py

install: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_OUT)
	$(BIN)/bdisc analyze tests/data/demo --out $(DEMO_OUT)/analyze --format all --no-progress
	$(BIN)/bdisc embed tests/data/demo --out $(DEMO_OUT)/discover --overlap 1.5 --no-progress
	$(BIN)/bdisc discover tests/data/demo --out $(DEMO_OUT)/discover --no-progress
	# A stand-in for a reviewer: the background type (0) is "background", every other
	# cluster is named after its number; then export.
	awk -F, 'BEGIN{OFS=","} NR==1{print "Folder","Cluster","Label"; next} {print $$1,$$2,($$2<0?"":($$4=="0"?"background":"call_type_"$$2))}' \
		$(DEMO_OUT)/discover/site_a/review.csv > $(DEMO_OUT)/review_site_a.csv
	$(BIN)/bdisc export --review $(DEMO_OUT)/review_site_a.csv --results $(DEMO_OUT)/discover --out $(DEMO_OUT)/trainset
	@echo "detections:   $(DEMO_OUT)/analyze/BirdNET_CombinedTable.csv"
	@echo "review pages: $(DEMO_OUT)/discover/index.html (open it in a browser)"
	@echo "training set: $(DEMO_OUT)/trainset/manifest.csv"

lint: $(STAMP)
	$(BIN)/ruff check services tests bench
	$(BIN)/ruff format --check services tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Deployment files, statically (no Docker engine or cluster needed): the real
# docker-compose and kubectl binaries, kubernetes-validate, the Dockerfile rules and the
# settings drift checks.
validate: $(STAMP)
	$(BIN)/pytest -q tests/deploy

test: lint typecheck validate
	bash scripts/ensure-test-infra.sh
	$(BIN)/pytest --ignore=tests/deploy

# Re-pin the images' dependencies (docker/constraints.txt) from a fresh environment.
constraints: $(BIN)/python
	rm -rf .constraints-venv && $(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/pip install --quiet '.[ml,discovery,platform]' grpcio-tools
	{ echo "# Pinned versions of every runtime dependency of the images (pip install -c)."; \
	  echo "# Regenerate with: make constraints (a fresh venv with the ml, discovery, platform extras)."; \
	  .constraints-venv/bin/pip freeze | grep -v '^bdisc'; } > docker/constraints.txt
	rm -rf .constraints-venv

bench: $(STAMP)
	$(BIN)/python bench/embed_throughput.py

stack: $(STAMP)
	EMBED_REPLICAS=$(EMBED_REPLICAS) $(BIN)/python -m devstack up

stack-down:
	$(BIN)/python -m devstack down

stack-status:
	$(BIN)/python -m devstack status

clean:
	rm -rf $(VENV) $(DEMO_OUT) .mypy_cache .ruff_cache .pytest_cache
