"""Pure Debian format code (no I/O): versions, deb822 paragraphs, relations, Release."""
