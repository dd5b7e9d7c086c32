# syntax=docker/dockerfile:1

# ---- build: a static binary (no cgo), reproducible paths, no symbol tables.
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
# Modules first, so editing the source does not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/seckill ./cmd/seckill \
 && mkdir -p /out/state

# ---- runtime: distroless, no shell, runs as uid/gid 65532 (nonroot).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/seckill /seckill
COPY configs/seckill.yaml /etc/seckill/seckill.yaml
# The working directory holds the default relative data dirs (./data/nats for
# the embedded NATS store, ./data/sentinel), so it must be writable by nonroot.
COPY --from=build --chown=65532:65532 /out/state /var/lib/seckill
WORKDIR /var/lib/seckill
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/seckill"]
CMD ["serve", "--config", "/etc/seckill/seckill.yaml"]
