# Sluice as a container: built with the same `npm ci` + `npm run build` the tests use, shipped
# with production dependencies only, running as an unprivileged user on a read-only root.
# Build: docker build -t sluice .   Run and Kubernetes sidecar: see docs/appliance.md.

FROM node:24-bookworm-slim AS build
# re2 compiles its native addon when no prebuilt binary fits the platform; Sluice's own sock_diag
# addon (binding.gyp, src/identity/sock-diag/) is always compiled, by npm ci's install step.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json binding.gyp ./
COPY src/identity/sock-diag ./src/identity/sock-diag
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
# nftables lets the same image run `sluice nft apply` in a privileged init container.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid sluice --no-create-home --shell /usr/sbin/nologin sluice \
 && install -d -o sluice -g sluice -m 0700 /var/lib/sluice \
 && install -d -m 0755 /etc/sluice
ENV NODE_ENV=production \
    SLUICE_STATE_DIR=/var/lib/sluice
WORKDIR /opt/sluice
COPY --from=build /build/package.json ./
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist/src ./dist/src
COPY --from=build /build/build/Release/sock_diag.node ./build/Release/sock_diag.node
COPY rules ./rules
COPY blocklists ./blocklists
COPY nftables ./nftables
COPY systemd ./systemd
COPY docs ./docs
# Only the state volume is written: the root filesystem can be mounted read-only.
VOLUME ["/var/lib/sluice"]
USER 10001:10001
EXPOSE 3128 3080 3443 5053/udp 5053/tcp 9090
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/sluice/dist/src/cli/main.js"]
CMD ["run", "--config", "/etc/sluice/sluice.yaml"]
