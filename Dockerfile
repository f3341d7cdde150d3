# imgrelay container image. Multi-stage: build with the Rust toolchain, run on a slim Debian
# with nothing but the binary (rustls carries its own roots: no CA bundle, no OpenSSL).
#
#   docker build -t imgrelay .
#   docker run -p 8080:8080 -v imgrelay-cache:/var/cache/imgrelay \
#     -e IMGRELAY_SECURITY__ALLOWED_HOSTS='["static.example.com"]' imgrelay

FROM rust:1-slim-bookworm AS build
# nasm lets codec crates use their assembly (libjpeg-turbo on its own, rav1e through the `asm`
# feature); the build works without it, only slower code.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nasm pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a source change does not rebuild them. The bench files only need to
# exist for cargo to read the manifest; a release build does not compile them.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked --features asm \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --features asm \
 && strip target/release/imgrelay

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 imgrelay \
 && useradd --system --uid 10001 --gid imgrelay --home-dir /nonexistent --shell /usr/sbin/nologin imgrelay \
 && mkdir -p /var/cache/imgrelay /etc/imgrelay \
 && chown imgrelay:imgrelay /var/cache/imgrelay
COPY --from=build /src/target/release/imgrelay /usr/local/bin/imgrelay
COPY proxy.toml /etc/imgrelay/proxy.toml
ENV IMGRELAY_SERVER__LISTEN=0.0.0.0:8080 \
    IMGRELAY_CACHE__DIR=/var/cache/imgrelay
USER imgrelay:imgrelay
WORKDIR /var/cache/imgrelay
VOLUME ["/var/cache/imgrelay"]
EXPOSE 8080
# SIGTERM starts a graceful drain (server.grace_period); say so explicitly.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/imgrelay", "--config", "/etc/imgrelay/proxy.toml", "probe"]
ENTRYPOINT ["/usr/local/bin/imgrelay", "--config", "/etc/imgrelay/proxy.toml"]
CMD ["serve"]
