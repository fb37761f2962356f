# mtlog-audit build and test targets. `make test` is what CI runs.
GO ?= go

# staticcheck, pinned; installed into ./bin (git-ignored) on first use.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := bin/staticcheck-$(STATICCHECK_VERSION)

# promtool, pinned, for the alert rules; installed into ./bin on first use.
PROMTOOL_VERSION := v0.316.0
PROMTOOL := bin/promtool-$(PROMTOOL_VERSION)

# The version and revision `mtlog-audit version` prints (set with -ldflags
# -X); empty means what the Go toolchain stamped in the build information.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/willibrandon/mtlog-audit/internal/cli.Version=$(VERSION) -X github.com/willibrandon/mtlog-audit/internal/cli.Revision=$(REVISION)
PREFIX ?= /usr/local

# goreleaser and kustomize, pinned, for release-check; installed into ./bin
# on first use (goreleaser takes minutes to build).
GORELEASER_VERSION := v2.17.0
GORELEASER := bin/goreleaser-$(GORELEASER_VERSION)
KUSTOMIZE_VERSION := v5.8.2
KUSTOMIZE := bin/kustomize-$(KUSTOMIZE_VERSION)

# Every os/arch the release builds (.goreleaser.yaml): each is built; the
# tests are compiled too (go vet) once per operating system other than
# this one, where the code differs (flock, statfs, fdatasync, mode bits and
# ACLs); lint vets this one.
RELEASE_TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
VET_TARGETS := darwin/amd64 windows/amd64

.PHONY: servers servers-stop test lint rules unit benchmarks durability torture-quick torture bench fuzz example build install clean release-check cross-compile manifests

test: lint rules release-check servers unit benchmarks durability torture-quick

# The storage servers the backend tests use (MinIO, Azurite,
# fake-gcs-server), installed into ./bin on first use and started on
# 127.0.0.1; the tests find them through .servers/env. A developer without
# them can run the rest with MTLOG_AUDIT_SKIP_SERVERS=1.
servers:
	scripts/servers.sh start

servers-stop:
	scripts/servers.sh stop

# Formatting and static checks (also of the benchmarks/ module, so that an
# API change that breaks it fails CI).
lint: $(STATICCHECK)
	@out=$$(gofmt -l .); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags torture ./torture/
	$(STATICCHECK) ./...
	cd benchmarks && $(GO) vet ./...
	cd deploy && $(GO) vet ./...

$(STATICCHECK):
	GOBIN=$(CURDIR)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv bin/staticcheck $@

# What a release needs: the goreleaser configuration is valid, every target
# it builds compiles (the library, the command and, through go vet, every
# test), and the deployment files are valid: the Kubernetes manifests
# render with kustomize and decode strictly into the Kubernetes API types
# with the security settings docs/deployment/kubernetes.md promises, and
# docker-compose.yml loads with the Compose reference loader and every file
# it references exists (the tests of the deploy/ module).
release-check: $(GORELEASER) cross-compile manifests
	$(GORELEASER) check

cross-compile:
	@set -e; for t in $(RELEASE_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; echo "GOOS=$$os GOARCH=$$arch go build ./..."; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build ./...; \
	done
	@set -e; for t in $(VET_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; echo "GOOS=$$os GOARCH=$$arch go vet ./..."; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) vet ./...; \
	done

manifests: $(KUSTOMIZE)
	$(KUSTOMIZE) build deploy/kubernetes > bin/kustomize-output.yaml
	cd deploy && KUSTOMIZE_OUTPUT=$(CURDIR)/bin/kustomize-output.yaml $(GO) test -count=1 ./...

$(GORELEASER):
	GOBIN=$(CURDIR)/bin nice -n 19 $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)
	mv bin/goreleaser $@

$(KUSTOMIZE):
	GOBIN=$(CURDIR)/bin $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv bin/kustomize $@

# The Prometheus alert rules: syntax, then their unit tests
# (deploy/prometheus/alerts_test.yml).
rules: $(PROMTOOL)
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && $(CURDIR)/$(PROMTOOL) test rules alerts_test.yml

$(PROMTOOL):
	GOBIN=$(CURDIR)/bin $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	mv bin/promtool $@

# Every package's tests under the race detector (includes 1,000 power-loss
# crash points, 50 SIGKILL rounds and the fuzz seed corpora).
unit:
	$(GO) test -race -count=1 -timeout 30m ./...

# The benchmarks/ module (its own go.mod): build it and run its short tests.
benchmarks:
	cd benchmarks && $(GO) build ./... && $(GO) test -short -count=1 -timeout 10m ./...

# The command, with the version stamped: ./mtlog-audit.
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o ./mtlog-audit ./cmd/mtlog-audit

# Install the command to $(PREFIX)/bin (default /usr/local/bin).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 ./mtlog-audit $(DESTDIR)$(PREFIX)/bin/mtlog-audit

# Remove what the targets build and write (not ./bin's pinned tools).
clean:
	rm -f ./mtlog-audit torture-report.html torture-report.json torture-kill9.html torture-kill9.json torture-tmpfs.html torture-tmpfs.json benchmarks/benchmarks

# The full 10,000 randomized power-loss crash points (too slow under -race).
durability:
	$(GO) test -count=1 -run 'TestPowerLoss' ./wal/ -powerloss.iterations=10000

# The torture suite's quick pass without the race detector: 20,000
# iterations across the in-process scenarios, 200 on a real tmpfs (root
# only; skipped otherwise) and 50 SIGKILL rounds. (Under -race, `unit` runs
# a smaller sample of every scenario.)
torture-quick:
	$(GO) test -count=1 -run 'TestQuickPass|TestRegressions' ./torture/

# The full torture run: 1,000,000 iterations of each in-process scenario,
# 10,000 SIGKILL rounds, 10,000 disk-full rounds on a real tmpfs (root
# only; reported as skipped otherwise), 10,000 HungMirror rounds (each
# waits out a copy's timeout, mostly idle: 8 at once) and 10,000 rounds of
# each shipping scenario (their backends are real files), through the
# command, with HTML and JSON reports.
torture:
	$(GO) build -o ./mtlog-audit ./cmd/mtlog-audit
	./mtlog-audit torture --iterations 1000000 --scenarios PowerLoss,DiskFull,FsyncFailure,RandomCorruption,ClockJump,ConcurrentCorruption,ForgedTail -o torture-report.html -o torture-report.json --force
	./mtlog-audit torture --iterations 10000 --scenarios Kill9DuringWrite -o torture-kill9.html -o torture-kill9.json --force
	./mtlog-audit torture --iterations 10000 --scenarios DiskFullTmpfs -o torture-tmpfs.html -o torture-tmpfs.json --force
	./mtlog-audit torture --iterations 10000 --workers 8 --scenarios HungMirror -o torture-hungmirror.html -o torture-hungmirror.json --force
	./mtlog-audit torture --iterations 10000 --scenarios NetworkPartition,ByzantineBackend -o torture-shipping.html -o torture-shipping.json --force

# Throughput against the minimal group-commit reference loop, same run.
# Put TMPDIR on the disk you want to measure.
bench:
	$(GO) test -run '^$$' -bench 'Append' -benchtime 3s ./wal/
	$(GO) test -run '^$$' -bench 'Write|Emit|IntegrityOverhead|Verify' -benchtime 3s .
	$(GO) test -run '^$$' -bench 'Overhead|AA' -benchtime 200000x ./adapters/... ./internal/adaptertest/

# Run the fuzz targets for a while each.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzOpenDir -fuzztime 60s ./wal/
	$(GO) test -run '^$$' -fuzz FuzzRecordDecoder -fuzztime 60s ./wal/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./event/
	$(GO) test -run '^$$' -fuzz FuzzParseCheckpoint -fuzztime 60s ./integrity/
	$(GO) test -run '^$$' -fuzz FuzzParseProofBundle -fuzztime 60s ./integrity/
	$(GO) test -run '^$$' -fuzz FuzzEncryptRoundTrip -fuzztime 60s ./protect/

example:
	$(GO) run ./examples/basic
