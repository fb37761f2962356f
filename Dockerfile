# syntax=docker/dockerfile:1
# The mtlog-audit images (docs/deployment/container.md):
#   docker build -t mtlog-audit .                           the command (default)
#   docker build --target example -t mtlog-audit-example .  the app of examples/kubernetes
#   docker build --target jobs -t mtlog-audit-jobs .        the command and a shell, for the verify CronJob
# Every stage runs as the distroless "nonroot" user (65532) with static
# binaries (CGO_ENABLED=0) and the log's volume at /var/audit (mode 0700).

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
ARG REVISION=""
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags "-s -w \
      -X github.com/willibrandon/mtlog-audit/internal/cli.Version=${VERSION} \
      -X github.com/willibrandon/mtlog-audit/internal/cli.Revision=${REVISION}" \
      -o /out/mtlog-audit ./cmd/mtlog-audit \
 && go build -trimpath -ldflags "-s -w" -o /out/mtlog-audit-example ./examples/kubernetes \
 && mkdir -p /rootfs/var/audit && chmod 0700 /rootfs/var/audit && chown 65532:65532 /rootfs/var/audit

# The app the Kubernetes manifests and docker-compose.yml run.
FROM gcr.io/distroless/static-debian12:nonroot AS example
COPY --from=build --chown=65532:65532 /rootfs/var/audit /var/audit
COPY --from=build /out/mtlog-audit /out/mtlog-audit-example /usr/local/bin/
USER 65532:65532
ENV AUDIT_WAL_DIR=/var/audit/wal AUDIT_LISTEN=:8080
VOLUME ["/var/audit"]
EXPOSE 8080
# The command scrapes the app's own /metrics: exit status 2 when it does not
# answer with mtlog-audit metrics.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s \
  CMD ["/usr/local/bin/mtlog-audit", "monitor", "--metrics", "http://127.0.0.1:8080/metrics", "--once", "--interval", "1s", "--quiet"]
ENTRYPOINT ["/usr/local/bin/mtlog-audit-example"]

# The command with busybox's shell, for scripts such as the CronJob's, which
# maps verify's exit status 3 (not yet covered by a checkpoint) to success.
FROM gcr.io/distroless/static-debian12:debug-nonroot AS jobs
COPY --from=build --chown=65532:65532 /rootfs/var/audit /var/audit
COPY --from=build /out/mtlog-audit /usr/local/bin/
USER 65532:65532
VOLUME ["/var/audit"]
ENTRYPOINT ["/usr/local/bin/mtlog-audit"]
CMD ["--help"]

# The command (the default target).
FROM gcr.io/distroless/static-debian12:nonroot AS cli
COPY --from=build --chown=65532:65532 /rootfs/var/audit /var/audit
COPY --from=build /out/mtlog-audit /usr/local/bin/
USER 65532:65532
VOLUME ["/var/audit"]
# A cheap read-only look at the log on the volume (mtlog-audit info: no
# signature check, no lock taken); exit status non-zero when the log is
# missing, not a log, or damaged before its last segment.
HEALTHCHECK --interval=5m --timeout=1m \
  CMD ["/usr/local/bin/mtlog-audit", "info", "--wal", "/var/audit/wal", "--quiet"]
ENTRYPOINT ["/usr/local/bin/mtlog-audit"]
CMD ["--help"]
