# syntax=docker/dockerfile:1
# Build stage: compiles the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY config ./config
COPY src ./src
RUN cargo build --release --locked --bin ticketing

# Runtime stage: the binary only, as an unprivileged user, data on a volume.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/ticketing ticketing \
    && mkdir -p /var/lib/ticketing && chown ticketing /var/lib/ticketing
COPY --from=build /src/target/release/ticketing /usr/local/bin/ticketing
USER ticketing
ENV TICKETING_HTTP__ADDR=0.0.0.0:3000 \
    TICKETING_STORAGE__PATH=/var/lib/ticketing/data
VOLUME ["/var/lib/ticketing"]
EXPOSE 3000
STOPSIGNAL SIGTERM
ENTRYPOINT ["ticketing"]
CMD ["serve"]
