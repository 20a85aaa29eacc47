# From the seeds: the debug variant, which must never reach production.
FROM registry.example/distroless/python3:debug
COPY app.py /app.py
CMD ["/app.py"]
