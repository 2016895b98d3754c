# Skirmish server image: multi-stage on debian:bookworm-slim.
#
#   docker build -t skirmish .
#   docker run --rm --init --shm-size=128m -p 7777:7777 -p 7778:7778 skirmish
#   docker compose up            # server + a 500-bot load test (docker-compose.yml)
#
# --shm-size: the game state lives in a POSIX shared-memory segment in
# /dev/shm: about 44 MB with the default config (each of the 4,096 match
# slots keeps a ring of 8 states for delta snapshots), more than half of
# Docker's default 64 MB; 128m leaves room. It grows with max_players and
# max_matches: the start-up log prints the size.
# --init: the master reaps its own children, but an init keeps signals and
# orphans right if anything else runs in the container.
# Stopping: SIGTERM drains (ServerShutdown to every client, children exit,
# the segment is removed) within drain_timeout_ms (30 s): give `docker stop`
# a longer timeout (`-t 40`).
#
# No Docker engine runs on the build machines: tests/deploy/test_docker_steps.py
# runs these same steps outside Docker (install into a clean prefix, the
# runtime libraries below against ldd, the server as a non-root user, the
# HEALTHCHECK command against it).

FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSKIRMISH_TESTS=OFF \
 && cmake --build /build --target skirmish-server skirmish-loadtest arena battleship \
 && cmake --install /build --prefix /opt/skirmish

FROM debian:bookworm-slim
# Runtime libraries only (what ldd of the two binaries needs), and curl for
# the health check.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends libuv1 libspdlog1.10 libfmt9 libtomlplusplus3 libssl3 libsqlite3-0 libhiredis0.14 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin skirmish
COPY --from=build /opt/skirmish /opt/skirmish
USER skirmish
EXPOSE 7777/tcp 7778/tcp
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=2s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:7778/healthz || exit 1
ENTRYPOINT ["/opt/skirmish/bin/skirmish-server", "--config", "/opt/skirmish/etc/skirmish/container.toml"]
