# Squirrel Stats: `docker build -t squirrel-stats .`, then
#   docker run -p 8000:8000 -v squirrel-data:/data squirrel-stats
# (SQLite in the /data volume), or `docker compose up` for PostgreSQL, Redis and the workers.

ARG RUST_VERSION=1.95

# --- builder: dependencies in a layer of their own, rebuilt only when Cargo.toml/Cargo.lock change ---
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY migrations ./migrations
COPY src ./src
# `touch`: the placeholder build left newer timestamps than the real sources would have.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && strip target/release/squirrel \
 && mkdir -p /out/data \
 && cp target/release/squirrel /out/squirrel

# --- runtime: glibc, CA certificates and nothing else; no shell, no package manager ---
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/squirrel /usr/local/bin/squirrel
# The SQLite default (`sqlite://squirrel.db`) lands in the working directory: a volume the
# non-root user owns.
COPY --from=builder --chown=65532:65532 /out/data /data
WORKDIR /data
VOLUME ["/data"]
USER 65532:65532
ENV SQUIRREL_LOG=info
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["squirrel", "healthcheck", "--url", "http://127.0.0.1:8000/health/live"]
CMD ["squirrel", "serve", "--addr", "0.0.0.0:8000"]
