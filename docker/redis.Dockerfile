# Redis for compose.yaml, built from the same Debian base as wspushd because this image can be
# built without a registry (Debian's redis-server, 7.0 on bookworm). Where Docker Hub is
# reachable, `image: redis:7` in compose.yaml does the same job.
ARG DEBIAN_SLIM=debian:bookworm-slim
FROM ${DEBIAN_SLIM}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
VOLUME /data
EXPOSE 6379
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --retries=5 CMD ["redis-cli", "ping"]
# No protected mode: the port is reached only on compose's network, which is its protection.
# appendonly, no RDB snapshots: the persistence docs/engines.md advises so that history survives a Redis restart.
ENTRYPOINT ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", \
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
