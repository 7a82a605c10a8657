# One image for the gateway and the billing API (the command chooses), running as the non-root user `node`.
# Stage 1 installs production dependencies only; stage 2 is the runtime. tsx runs the TypeScript sources
# directly, so there is no build output that could drift from them.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY app ./app
COPY common ./common
COPY gateway ./gateway
COPY billing-api ./billing-api
COPY rating ./rating
COPY simulator ./simulator
COPY migrations ./migrations
USER node
EXPOSE 1883 8083 3000
CMD ["npm", "start"]
