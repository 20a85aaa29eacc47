"""Signatures, attestations and provenance, compatible with cosign (key-based).

- :mod:`~distill.sign.keys`: cosign-format key pairs (ECDSA P-256; the private key
  encrypted with scrypt + nacl/secretbox), passwords.
- :mod:`~distill.sign.payload`: the simple-signing payload a signature signs.
- :mod:`~distill.sign.dsse`: in-toto Statements in DSSE envelopes (attestations).
- :mod:`~distill.sign.provenance`: SLSA provenance v1 of a distill build.
- :mod:`~distill.sign.image`: sign, verify, attest an image in a registry or a layout;
  the storage (``.sig``/``.att`` tags, referrers) is :mod:`distill.oci.attach`.

Keyless signing (a Fulcio certificate, a Rekor entry) needs those services: distill
signs with keys only. The seam is :func:`distill.sign.image.sign`'s layer: a keyless
signer would add the ``dev.sigstore.cosign/certificate``, ``…/chain`` and ``…/bundle``
annotations beside the signature (docs/signing.md).
"""
