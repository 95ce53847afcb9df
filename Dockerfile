# One image recipe for every service: `docker build --target gateway .` (and so on).
# Stages: store (dependencies fetched from the lockfile alone) -> build (compile) -> prod-deps (production
# dependencies only, no sources) -> runtime (non-root) -> one target per service.

FROM node:20-bookworm-slim AS base
RUN npm install --global pnpm@10.34.8 && npm cache clean --force
WORKDIR /app

# Rebuilt only when a dependency changes: `pnpm fetch` needs nothing but the lockfile.
FROM base AS store
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch

FROM store AS build
COPY . .
RUN pnpm install --frozen-lockfile --offline && pnpm exec tsc -b

# The compiled workspace with production dependencies only: TypeScript sources, tests and dev tools stay behind,
# and so do the workspace packages no service imports (the bench, the demo CLI, the test kit) with their
# dependencies. pnpm installs the projects that remain; the lockfile's entries for the removed ones are unused.
# (`pnpm deploy` per service would be leaner, but without a `files` list it packs by .gitignore, which drops dist/.)
FROM store AS prod-deps
COPY --from=build /app ./
RUN find . -name node_modules -prune -exec rm -rf {} + \
  && find packages services -maxdepth 2 \( -name src -o -name test -o -name '*.tsbuildinfo' \) -prune -exec rm -rf {} + \
  && rm -rf test scripts packages/bench packages/cli packages/testkit \
  && pnpm install --frozen-lockfile --offline --prod

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root, run as `node`: the service cannot rewrite its own code.
COPY --from=prod-deps /app ./
USER node

FROM runtime AS gateway
EXPOSE 8080
CMD ["node", "services/gateway/dist/main.js"]

FROM runtime AS migrate
CMD ["node", "services/gateway/dist/migrate.js"]

FROM runtime AS webhook-ingest
EXPOSE 8081
CMD ["node", "services/webhook-ingest/dist/main.js"]

FROM runtime AS portrait-worker
EXPOSE 9101
CMD ["node", "services/portrait-worker/dist/main.js"]

FROM runtime AS pro-worker
EXPOSE 9102
CMD ["node", "services/pro-worker/dist/main.js"]

FROM runtime AS ultra-worker
EXPOSE 9103
CMD ["node", "services/ultra-worker/dist/main.js"]

FROM runtime AS fal-sim
EXPOSE 8090
CMD ["node", "services/fal-sim/dist/main.js"]
