# syntax=docker/dockerfile:1
# The producer. Ubuntu 24.04 ships librdkafka 2.3 (>= 2.2, which Kafka-compatible brokers such as
# Tansu need; Debian 12's 2.0.2 mis-parses ApiVersions v3).
FROM swift:6.1-noble AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        librdkafka-dev libmongoc-dev libbson-dev libssh2-1-dev libcurl4-openssl-dev libsqlite3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
RUN swift build -c release --product producer --static-swift-stdlib \
    && install -D .build/release/producer /out/producer

FROM ubuntu:24.04
RUN apt-get update && apt-get install -y --no-install-recommends librdkafka1 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home producer
COPY --from=build /out/producer /usr/local/bin/producer
USER 10001
ENV CONTINUOUS=1 RATE=200
# The producer serves no HTTP; liveness is its exit status (Kubernetes restarts it), so the
# check only proves the binary and its libraries load.
HEALTHCHECK --interval=30s --timeout=3s CMD ["/usr/local/bin/producer", "--help"]
ENTRYPOINT ["/usr/local/bin/producer"]
