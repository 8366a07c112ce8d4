# syntax=docker/dockerfile:1
# The processor: Kafka → MongoDB, HTTP on 8080 (/health, /ready, /metrics, /gpu/info, /stats).
FROM swift:6.1-noble AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        librdkafka-dev libmongoc-dev libbson-dev libssh2-1-dev libcurl4-openssl-dev libsqlite3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
RUN swift build -c release --product processor --static-swift-stdlib \
    && install -D .build/release/processor /out/processor

FROM ubuntu:24.04
RUN apt-get update && apt-get install -y --no-install-recommends librdkafka1 libmongoc-1.0-0 libbson-1.0-0 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home processor
COPY --from=build /out/processor /usr/local/bin/processor
USER 10001
ENV HTTP_HOST=0.0.0.0 HTTP_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD ["/usr/local/bin/processor", "--help"]
ENTRYPOINT ["/usr/local/bin/processor"]
