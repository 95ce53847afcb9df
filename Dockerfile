# One image recipe for every service: `docker build --target gateway .` (and so on).
# Stages: build (all deps, compile) -> prod-deps (production deps only) -> runtime (non-root) -> one target a service.

FROM node:20-bookworm-slim AS base
RUN npm install --global pnpm@10.34.8 && npm cache clean --force
WORKDIR /app
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/shared/package.json packages/shared/
COPY services/gateway/package.json services/gateway/
COPY services/webhook-ingest/package.json services/webhook-ingest/
COPY services/portrait-worker/package.json services/portrait-worker/
COPY services/pro-worker/package.json services/pro-worker/
COPY services/ultra-worker/package.json services/ultra-worker/
COPY services/fal-sim/package.json services/fal-sim/

FROM base AS build
RUN pnpm install --frozen-lockfile
COPY tsconfig.base.json tsconfig.json ./
COPY packages packages
COPY services services
RUN pnpm exec tsc -b

FROM base AS prod-deps
RUN pnpm install --frozen-lockfile --prod

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app ./
COPY --from=build /app/packages/shared/dist packages/shared/dist
COPY --from=build /app/services/gateway/dist services/gateway/dist
COPY --from=build /app/services/gateway/migrations services/gateway/migrations
COPY --from=build /app/services/webhook-ingest/dist services/webhook-ingest/dist
COPY --from=build /app/services/portrait-worker/dist services/portrait-worker/dist
COPY --from=build /app/services/pro-worker/dist services/pro-worker/dist
COPY --from=build /app/services/ultra-worker/dist services/ultra-worker/dist
COPY --from=build /app/services/fal-sim/dist services/fal-sim/dist
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
