# Trove in a container. Two stages:
#   build    the Swift toolchain image; runs `make release`, the build of the README's quick start
#            (scripts/install-deps.sh installs libhiredis-dev and libcurl4-openssl-dev, then
#            `swift build -c release`)
#   runtime  Swift's slim runtime image with only hiredis' and libcurl's runtime libraries, a non-root user,
#            the example rules in /etc/trove, and a health check on the admin API's /healthz
#
#   docker build -t trove .
#   docker run --rm -p 8080:8080 -p 9090:9090 -e TROVE_ADMIN_TOKEN=change-me-before-use-0000 \
#     -v "$PWD/rules/my-api.yaml:/etc/trove/rules.yaml:ro" trove serve --config /etc/trove/rules.yaml
#   docker compose up        # the demo: Redis, the demo origin and Trove (docker-compose.yml)

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=swift:6.3-bookworm-slim

FROM ${SWIFT_IMAGE} AS build
WORKDIR /src
# The package manifest first, so that a change in Sources/ does not fetch the dependencies again.
COPY Package.swift ./
RUN swift package resolve
COPY Makefile ./
COPY scripts/ scripts/
COPY Sources/ Sources/
COPY Tests/ Tests/
RUN make release \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/trove" /out/usr/local/bin/trove

FROM ${RUNTIME_IMAGE}
# Runtime libraries only: hiredis (the Redis store), libcurl (the origin client), curl (the health check).
# Versions are whatever Debian bookworm ships with security updates, as the README's install does.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhiredis0.14 libcurl4 curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 trove \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin trove
COPY --from=build /out/ /
COPY rules/ /etc/trove/
# The user `trove`, by number so that any runtime can tell it is not root.
USER 10001:10001
# 8080: the proxy; 9090: the admin API (purge, stats, reload; bearer token from TROVE_ADMIN_TOKEN).
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/healthz"]
# SIGTERM drains requests in flight (up to --drain, 10 s by default) before Trove exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["trove"]
CMD ["serve", "--config", "/etc/trove/compose.yaml"]
