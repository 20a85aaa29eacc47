"""A small Flask application (served by waitress, a production WSGI server in pure Python)."""

import os
import platform

from flask import Flask, jsonify
from markupsafe import escape

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return f"hello from {escape('<distill>')} python {platform.python_version()} as uid {os.getuid()}\n"


@app.get("/healthz")
def healthz():  # an HTTP probe: there is no shell for an exec health check
    return jsonify(status="ok")
