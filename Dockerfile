# Multi-stage build of the passerelle binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/passerelle ./cmd/passerelle

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --home-dir /var/lib/passerelle --create-home passerelle
COPY --from=build /out/passerelle /usr/local/bin/passerelle
USER passerelle
VOLUME /var/lib/passerelle
ENTRYPOINT ["/usr/local/bin/passerelle"]
CMD ["-config", "/etc/passerelle/passerelle.toml"]
