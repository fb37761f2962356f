module github.com/willibrandon/mtlog-audit

go 1.24.0

require github.com/willibrandon/mtlog v0.10.0

require (
	github.com/transparency-dev/merkle v0.0.2
	golang.org/x/mod v0.30.0
)
