module github.com/willibrandon/mtlog-audit

go 1.24

require github.com/willibrandon/mtlog v0.10.0
