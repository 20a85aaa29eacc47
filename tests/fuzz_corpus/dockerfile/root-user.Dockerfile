FROM debian:bookworm-slim@sha256:0000000000000000000000000000000000000000000000000000000000000000
COPY server /usr/local/bin/server
USER root
ENTRYPOINT ["/usr/local/bin/server", "--port", "8080"]
