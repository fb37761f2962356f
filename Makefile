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

.PHONY: servers servers-stop test lint rules unit benchmarks durability torture-quick torture bench fuzz example build install clean cross

test: lint rules servers unit benchmarks durability torture-quick

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

$(STATICCHECK):
	GOBIN=$(CURDIR)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv bin/staticcheck $@

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

# The release targets of other systems (.goreleaser.yaml): build
# every package and vet it, which also compiles the tests, so that code
# only one OS has (flock, statfs, fdatasync, mode bits) keeps a correct
# counterpart on the others.
CROSS_TARGETS := darwin/amd64 darwin/arm64 windows/amd64 windows/arm64

cross:
	@set -e; for t in $(CROSS_TARGETS); do \
	  echo "cross: $$t"; \
	  GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) build ./...; \
	  GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) vet ./...; \
	done

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
