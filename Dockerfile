# chatbridge container image: `docker build -t chatbridge .`
# Build stage: every dependency, then `npm run build` (tsc) into dist/.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the compiled code only; no compiler, no test tools.
FROM node:24-bookworm-slim
# Config: mount a file and set CHATBRIDGE_CONFIG (the Helm chart does); without one the bridge starts with no channels.
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# `node bin/chatbridge.js check-config <file>` (docs/configuration.md#checking-a-file) runs dist/.
COPY bin ./bin
# Writable state (stateDir, dead-letter file): ./.data by default; the chart points both at /data (an emptyDir).
RUN mkdir -p /data /app/.data && chown 1000:1000 /data /app/.data
# uid 1000 is the image's `node` user; numeric so Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 8080
# The same command as `npm start` (package.json), V8 flags included (docs/operations.md, "Runtime").
CMD ["node", "--max-semi-space-size=16", "dist/main.js"]
