FROM --platform=$X a AS b
ARG A=${B:-c}
RUN <<EOF
x
EOF
COPY --chown=1:1 ["a", "b"]
ENTRYPOINT ["a"
USER
\
