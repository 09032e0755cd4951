# syntax=docker/dockerfile:1

# Build: a release binary with the migrations and GraphiQL's files embedded.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY assets ./assets
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/festapi /usr/local/bin/festapi

# Run: a small image, a non-root user, and the binary as PID 1 so it receives SIGTERM.
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 festapi \
    && useradd --system --uid 10001 --gid festapi --no-create-home --shell /usr/sbin/nologin festapi
COPY --from=build /usr/local/bin/festapi /usr/local/bin/festapi
USER 10001:10001
ENV APP_ENV=production \
    FESTAPI_ADDR=0.0.0.0:8000 \
    RUST_LOG=festapi=info,tower_http=info,warn
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/festapi"]
CMD ["serve"]
