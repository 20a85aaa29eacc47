"""distill: distroless container images straight from Debian packages.

The public surface is small; the command line (``distill.cli``) is one client of it.
"""

from distill.errors import DistillError
from distill.options import Options

__version__ = "0.1.0"

__all__ = ["DistillError", "Options", "__version__"]
