# The medrep CLI (used by compose.yaml for the stream workers).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
# Sources (.dockerignore keeps node_modules, dist, caches and data out).
COPY . .
RUN npx tsc -p . && npm prune --omit=dev
ENTRYPOINT ["node", "bin/medrep.js"]
