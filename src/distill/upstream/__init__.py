"""Runtimes from their projects' own release archives (not Debian packages): Node.js."""
