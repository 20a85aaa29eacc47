# syntax=docker/dockerfile:1
FROM debian:bookworm AS build
RUN <<SCRIPT
set -e
apt-get update
apt-get install -y gcc
SCRIPT
COPY server.c .
RUN gcc -static -o /server server.c
FROM registry.example/distroless/static-debian12:nonroot@sha256:1111111111111111111111111111111111111111111111111111111111111111
COPY --from=build /server /server
ENTRYPOINT ["/server"]
