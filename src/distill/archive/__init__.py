"""Debian archive I/O: sources, transport, signature and hash-chain checks, caching."""
