# From the seeds (Java on distroless java21, nonroot).
FROM eclipse-temurin:21-jdk AS builder
WORKDIR /src
COPY . .
RUN ./gradlew build -x test
FROM registry.example/distroless/java21-debian12:nonroot
COPY --from=builder /src/build/libs/app.jar /app.jar
ENTRYPOINT ["java", "-jar", "/app.jar"]
