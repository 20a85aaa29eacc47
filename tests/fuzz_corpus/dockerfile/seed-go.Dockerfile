# From the seeds (distroless for Go, CGO_ENABLED=0 on static); registry host replaced.
FROM golang:1.21 AS builder
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /app -ldflags='-s -w' ./cmd/server
FROM registry.example/distroless/static-debian12:nonroot
COPY --from=builder /app /app
ENTRYPOINT ["/app"]
