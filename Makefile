# mtlog-audit build and test targets. `make test` is what CI runs.
GO ?= go

.PHONY: test lint unit durability torture-quick torture bench fuzz example

test: lint unit durability torture-quick

# Formatting and static checks.
lint:
	@out=$$(gofmt -l .); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Every package's tests under the race detector (includes 1,000 power-loss
# crash points, 50 SIGKILL rounds and the fuzz seed corpora).
unit:
	$(GO) test -race -count=1 ./...

# The full 10,000 randomized power-loss crash points (too slow under -race).
durability:
	$(GO) test -count=1 -run 'TestPowerLoss' ./wal/ -powerloss.iterations=10000

# The torture suite's quick pass without the race detector: 20,000
# iterations across the in-process scenarios, 200 on a real tmpfs (root
# only; skipped otherwise) and 50 SIGKILL rounds. (Under -race, `unit` runs
# a smaller sample of every scenario.)
torture-quick:
	$(GO) test -count=1 -run 'TestQuickPass|TestRegressions' ./torture/

# The full torture run: 1,000,000 iterations of each in-process scenario and
# 10,000 SIGKILL rounds, through the command, with HTML and JSON reports.
torture:
	$(GO) build -o ./mtlog-audit ./cmd/mtlog-audit
	./mtlog-audit torture --iterations 1000000 --scenarios PowerLoss,DiskFull,FsyncFailure,RandomCorruption,ClockJump,ConcurrentCorruption,ForgedTail --report torture-report.html --json torture-report.json --force
	./mtlog-audit torture --iterations 10000 --scenarios Kill9DuringWrite --report torture-kill9.html --json torture-kill9.json --force

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

example:
	$(GO) run ./examples/basic
