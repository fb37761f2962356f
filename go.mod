module github.com/willibrandon/mtlog-audit

go 1.24.0

require github.com/willibrandon/mtlog v0.10.0

require (
	github.com/go-logr/logr v1.4.4
	github.com/rs/zerolog v1.35.1
	github.com/transparency-dev/merkle v0.0.2
	github.com/valyala/fastjson v1.6.10
	go.uber.org/zap v1.28.0
	golang.org/x/mod v0.30.0
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/sys v0.29.0 // indirect
)
