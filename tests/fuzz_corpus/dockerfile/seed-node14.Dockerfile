# ---- Base Node ---- (from the seeds: staged build onto distroless nodejs:14)
FROM node:14 AS base
COPY package*.json ./

# ---- Dependencies ----
FROM base AS dependencies
RUN npm install
# ---- Build ----
FROM base AS build
COPY . ./
COPY --from=dependencies /app/node_modules ./node_modules
# ---- Release Distroless ----
FROM registry.example/distroless/nodejs:14
COPY --from=build /app .
CMD ["app.js"]
