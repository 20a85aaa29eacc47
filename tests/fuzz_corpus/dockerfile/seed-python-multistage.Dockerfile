# From the seeds (python3, multi-stage): the final stage sets no USER.
FROM python:3.12 AS build
RUN pip install --target=/app/deps -r requirements.txt
FROM registry.example/distroless/python3
COPY --from=build /app/deps /app/deps
COPY app.py /app.py
CMD ["/app.py"]
