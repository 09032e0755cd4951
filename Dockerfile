# FestAPI's image. Base images are pinned to exact tags and moved forward on purpose (see
# docs/operations.md). The cache mounts below need BuildKit, the default builder since Docker
# Engine 23, whose built-in Dockerfile frontend supports them without a `# syntax` line.

# Build: a release binary with the migrations and GraphiQL's files embedded.
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY assets ./assets
# The git commit for the festapi_build_info metric: the build context has no .git.
ARG FESTAPI_REVISION=""
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    FESTAPI_GIT_COMMIT="${FESTAPI_REVISION}" cargo build --release --locked \
    && cp target/release/festapi /usr/local/bin/festapi

# Run: a small image, a non-root user, and the binary as PID 1 so it receives SIGTERM.
FROM debian:bookworm-20261005-slim

# Set by the build: docker build --build-arg FESTAPI_VERSION=0.1.0 \
#   --build-arg FESTAPI_REVISION="$(git rev-parse HEAD)" --build-arg FESTAPI_SOURCE=<repository URL>
# docker-compose.yml passes them through from its environment.
ARG FESTAPI_VERSION=unknown
ARG FESTAPI_REVISION=unknown
ARG FESTAPI_SOURCE=unknown
LABEL org.opencontainers.image.title="festapi" \
      org.opencontainers.image.description="A GraphQL API server for users and posts, backed by PostgreSQL" \
      org.opencontainers.image.source="${FESTAPI_SOURCE}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${FESTAPI_VERSION}" \
      org.opencontainers.image.revision="${FESTAPI_REVISION}"

# CA certificates for TLS to PostgreSQL and to identity providers. Not pinned to a version:
# Debian keeps only the newest version of a package in each suite, so a pin breaks the build on
# the next security update; the dated base image fixes everything else.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 festapi \
    && useradd --system --uid 10001 --gid festapi --no-create-home --shell /usr/sbin/nologin festapi
COPY --from=build /usr/local/bin/festapi /usr/local/bin/festapi
USER 10001:10001
ENV APP_ENV=production \
    FESTAPI_ADDR=0.0.0.0:8000 \
    RUST_LOG=festapi=info,tower_http=info,warn
EXPOSE 8000
# `festapi healthcheck` asks /readyz on FESTAPI_ADDR's port and gives up after 2 seconds.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/festapi", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/festapi"]
CMD ["serve"]
