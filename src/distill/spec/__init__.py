"""The image description: a typed model loaded from YAML, with a JSON schema."""

from distill.spec.load import load_spec, spec_schema
from distill.spec.model import Spec

__all__ = ["Spec", "load_spec", "spec_schema"]
