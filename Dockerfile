# Skirmish server image (first version; the operations issue adds the
# health check and docker-compose).
#
#   docker build -t skirmish .
#   docker run --rm --init --shm-size=128m -p 7777:7777 -p 7778:7778 skirmish
#
# --shm-size: the game state lives in a POSIX shared-memory segment in
# /dev/shm: about 44 MB with the default config (each of the 4,096 match
# slots keeps a ring of 8 states for delta snapshots), more than half of
# Docker's default 64 MB; 128m leaves room. It grows with max_players and
# max_matches: the start-up log prints the size.
# --init: the master reaps its own children, but an init keeps signals and
# orphans right if anything else runs in the container.

FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSKIRMISH_TESTS=OFF \
 && cmake --build /build --target skirmish-server

FROM debian:bookworm-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends libuv1 libspdlog1.10 libfmt9 libtomlplusplus3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin skirmish
COPY --from=build /build/server/skirmish-server /usr/local/bin/skirmish-server
COPY configs/ /etc/skirmish/
USER skirmish
EXPOSE 7777 7778
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/skirmish-server", "--config", "/etc/skirmish/container.toml"]
