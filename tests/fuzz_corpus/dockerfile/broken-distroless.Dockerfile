# A migration gone wrong: shell habits on a distroless final stage.
ARG BASE=registry.example/distroless/nodejs20-debian12
FROM node:20 AS build
WORKDIR /app
COPY . .
RUN npm ci --omit=dev
FROM ${BASE}
COPY --from=build /app /app
WORKDIR /app
RUN mkdir -p /app/cache
USER nonroot
HEALTHCHECK CMD wget -qO- http://localhost:3000/healthz
CMD npm start
