# keapsync: the front door. `make help` lists the targets.
SHELL := /bin/bash
GO      ?= go
BIN     := bin/keapsync
WITHPG  := $(GO) run ./sidecar/devtools/pgtest/withpg --
SUPABASE_CLI := .ci/supabase-cli/node_modules/.bin/supabase

# -trimpath: compiled packages name their files by module path, not by where the checkout sits,
# so Go's build cache serves a fresh clone of code it has built before. Without it every clone
# into a new directory (CI clones into a new temp dir each run) recompiled all of keapsync's
# packages: 45 of a clean clone's 90 CPU-s of building, vetting and linking. Panics and test
# failures then print module-relative paths (github.com/keapsync/keapsync/sidecar/...).
export GOFLAGS := -trimpath $(GOFLAGS)

.PHONY: help build demo demo-stop test test-inner test-sql test-supabase-cli test-schema test-docs test-ops schema schema-inner cover bench chaos lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/keapsync
	$(GO) build -o $(BIN) ./sidecar/cmd/keapsync

demo: build ## local Postgres (.data/, recreated each run), the Keap sandbox, keapsync serving and the dashboard
	$(BIN) demo

demo-stop: build ## stop the demo database (data stays in .data/)
	$(BIN) demo --stop

test: build test-docs ## everything: Go tests (with a 2-minute chaos soak), pgTAP suites, Supabase CLI vs Go migrator, on one throwaway cluster
	@command -v pg_prove >/dev/null || { echo "pg_prove missing: apt-get install libtap-parser-sourcehandler-pgtap-perl postgresql-15-pgtap (or run .ci/run)"; exit 1; }
	@for pkg in .ci/supabase-cli .ci/dashboard-e2e; do test -d $$pkg/node_modules || (cd $$pkg && npm ci --no-audit --no-fund --loglevel=error) || exit 1; done
	$(WITHPG) $(MAKE) --no-print-directory test-inner

# Runs inside withpg: PGHOST/PGPORT/PGUSER and KEAPSYNC_TEST_DATABASE_URL name the cluster.
# -p 3: one package more than the two cores, because the chaos soak (about two minutes) mostly
# waits on its actors' pace; with -p 2 it held one of the two slots all that time. -timeout:
# the slowest packages take 2-4 minutes on a loaded two-core machine; 20m keeps a slow machine
# from killing a test binary, and every test bounds its own waits well inside it.
# -vet=off: `go vet ./...` has just run every analyzer, a superset of the few go test runs
# again; -ldflags=-w: no DWARF in the 23 test binaries (stack traces do not need it), a quarter
# less link time.
test-inner:
	$(GO) vet ./...
	$(GO) test -count=1 -p 3 -timeout 20m -vet=off -ldflags=-w ./...
	$(MAKE) --no-print-directory test-sql test-supabase-cli test-schema test-ops

test-sql: ## pgTAP suites in supabase/tests, two shards side by side (needs PG* env naming a cluster; `make test` provides it)
	.ci/pgtap-run

schema: build ## regenerate sql/schema/ (the current schema, for reading) from the migrations
	$(WITHPG) $(MAKE) --no-print-directory schema-inner

# Runs inside withpg: migrates a fresh database and prints it as sql/schema/ (SCHEMA_CHECK=-check compares instead).
schema-inner:
	psql -q -d postgres -c 'drop database if exists schema_dump with (force)' -c 'create database schema_dump'
	$(BIN) --log-level warn migrate --database-url "postgres://postgres@127.0.0.1:$$PGPORT/schema_dump?sslmode=disable" >/dev/null
	$(GO) run ./sidecar/devtools/schemadump -database-url "postgres://postgres@127.0.0.1:$$PGPORT/schema_dump?sslmode=disable" -out sql/schema $(SCHEMA_CHECK)

test-schema: ## sql/schema/ matches the migrations (needs PG* env; `make test` provides it)
	@$(MAKE) --no-print-directory schema-inner SCHEMA_CHECK=-check && echo "ok - sql/schema is current"

test-ops: ## Prometheus alert rules in docs/ops/: promtool check rules and the rule unit tests (Debian package prometheus)
	@command -v promtool >/dev/null || { echo "promtool missing: apt-get install prometheus (or run .ci/run)"; exit 1; }
	promtool check rules docs/ops/alerts.yml
	cd docs/ops && promtool test rules alerts.test.yml

test-docs: ## docs and comments cite only what ships in the repository (docs/, not ../shared)
	@if git grep -n -e '\.\./shared' -- ':!Makefile'; then echo "not ok - the lines above cite files outside the repository: copy what they cite into docs/"; exit 1; fi
	@echo "ok - docs cite only the repository"

test-supabase-cli: ## `supabase db push` and `keapsync migrate` build identical schemas and history
	.ci/supabase-push-check

cover: build ## statement coverage per package (-short: without the chaos soak), on one throwaway cluster
	$(WITHPG) $(GO) test -short -count=1 -cover ./... | awk '{ print } /coverage:/ { n++ } END { if (!n) exit 1 }'

bench: build ## every benchmark against its same-run baseline, one package at a time, as one table (also docs/benchmarks.md)
	set -o pipefail; $(WITHPG) $(GO) test -run '^$$' -bench . -benchtime 1x -p 1 -timeout 30m ./... 2>/dev/null \
	  | $(GO) run ./sidecar/devtools/benchreport -out docs/benchmarks.md \
	    -command "$(if $(KEAPSYNC_BENCH_CONTACTS),KEAPSYNC_BENCH_CONTACTS=$(KEAPSYNC_BENCH_CONTACTS) )make bench"

chaos: ## chaos convergence soak: serve processes SIGKILLed mid-push/refresh/backfill, faults, then a record-by-record check (SEED=1 DURATION=2m; make test runs a 90 s one)
	$(GO) run ./sidecar/devtools/chaos -seed $(or $(SEED),1) -duration $(or $(DURATION),2m)

lint: ## gofmt, go vet
	@test -z "$$(gofmt -l sidecar supabase sql dashboard 2>/dev/null)" || { gofmt -l sidecar supabase sql dashboard; exit 1; }
	$(GO) vet ./...

clean: ## remove build output (not the demo data)
	rm -rf bin
