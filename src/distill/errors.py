"""One exception tree for distill.

Every error a user can cause or meet is a :class:`DistillError`; the command line
prints it as one line (``distill: error: <message> (hint: <hint>)``) and exits 2.
Anything else escaping is a bug in distill.

::

    DistillError
    ├── SpecError               the spec file: YAML, unknown fields, bad values
    ├── ArchiveError            talking to or trusting a Debian archive
    │   ├── NetworkError        the mirror cannot be reached (hint: --offline)
    │   ├── NotFoundError       the mirror has no such file
    │   ├── SignatureError      InRelease missing, badly signed, or expired
    │   ├── IntegrityError      a file's SHA256 or size differs from its signed record
    │   ├── CacheMissError      --offline and the cache lacks what is needed
    │   └── KeyringError        keyring missing or unusable
    ├── ResolveError            dependency resolution
    │   ├── UnknownPackageError a requested name no suite has (with suggestions)
    │   └── UnsatisfiableError  a relation no candidate satisfies (with the chain)
    ├── LockError               lockfile missing, unreadable or out of date
    ├── BuildError              assembling or writing an image
    │   ├── UnsafeEntryError    an entry would escape the root, or is a device file
    │   └── OutputError         the output cannot be written
    ├── ImageError              an image cannot be read or written (source, sink, reference)
    │   └── RegistryError       a registry refused, failed or cannot be reached
    ├── AuditError              an audit target cannot be read (corrupt, unreachable, unparsable)
    ├── FleetError              a fleet inventory cannot be read
    ├── DebugError              a debug session cannot start (no engine, no such container, not running)
    ├── VulnError               vulnerability data, a waiver file or an SBOM cannot be used
    ├── SigningError            a signing key or password cannot be used (damaged, foreign, wrong)
    └── VerificationError       a signature or attestation does not verify (exit status 1, not 2)
"""

from __future__ import annotations


class DistillError(Exception):
    """Base of all user-facing errors: a message plus an optional hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        if self.hint:
            text += f" (hint: {' '.join(self.hint.split())})"
        return text


class SpecError(DistillError):
    """The spec is not valid YAML, or does not describe a valid image."""


class ArchiveError(DistillError):
    """Fetching from or trusting a Debian archive failed."""


class NetworkError(ArchiveError):
    """The mirror could not be reached."""


class NotFoundError(ArchiveError):
    """The mirror answered 404 for a file distill needs."""


class SignatureError(ArchiveError):
    """InRelease is missing, its signature is bad or unknown, or it has expired."""


class IntegrityError(ArchiveError):
    """A downloaded file does not match the hash or size its signed index records."""


class CacheMissError(ArchiveError):
    """Working offline and the cache does not hold what is needed."""


class KeyringError(ArchiveError):
    """An OpenPGP keyring is missing or unusable."""


class ResolveError(DistillError):
    """Dependency resolution failed."""


class UnknownPackageError(ResolveError):
    """A requested package name exists in none of the suites."""


class UnsatisfiableError(ResolveError):
    """No set of packages satisfies the request."""


class LockError(DistillError):
    """The lockfile is missing, malformed or does not match the spec."""


class BuildError(DistillError):
    """Assembling the root filesystem or writing the image failed."""


class UnsafeEntryError(BuildError):
    """A package or spec entry would write outside the image root, or is a device node."""


class OutputError(BuildError):
    """The output (layout directory or archive) cannot be written."""


class ImageError(DistillError):
    """An image cannot be read from its source or written to its sink: a bad reference,
    a missing or corrupt blob, a document of the wrong shape, an engine that fails."""


class RegistryError(ImageError):
    """A registry cannot be reached, refuses the credentials, or answers with an error.

    ``status`` is the HTTP status that caused it (None: no answer); ``transient`` says
    whether the same request may succeed later (a 5xx, a dropped connection)."""

    def __init__(
        self, message: str, hint: str | None = None, *, status: int | None = None, transient: bool = False
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.transient = transient


class AuditError(DistillError):
    """An audit target cannot be read: a corrupt or truncated image, a registry that
    refuses or cannot be reached, a Dockerfile or manifest that does not parse."""


class FleetError(DistillError):
    """A fleet inventory cannot be read: a manifest that is not Kubernetes, a kubectl
    inventory that does not parse, a baseline report of another kind or version."""


class DebugError(DistillError):
    """A debug session cannot start: no podman or docker (or kubectl), no such container,
    a container that is not running, an engine that refuses the debug container."""


class VulnError(DistillError):
    """Vulnerability data (a tracker export, OSV records), a waiver file or an SBOM that
    cannot be read or used, or a target the data does not cover."""


class SigningError(DistillError):
    """A signing key cannot be used: no such file, damaged, of a kind distill does not
    sign with, or the password does not open it (or there is no password to ask for)."""


class VerificationError(DistillError):
    """A signature or attestation does not verify: none is there, none is by the key,
    one signs another digest or identity, or an envelope was tampered with.

    The command line exits 1 for it (2 is every other error), so a script can tell a
    verification that failed from one that could not be done."""
