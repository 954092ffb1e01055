"""Compiled artifacts: versioned, hashed, JSON-only directories that applications load in one call.

`load` / `save_artifact` / `verify` / `promote` / `sign` (store.py), `versions` / `promoted_stack` / `rollback`
(versions.py), `Manifest` and `diff` (manifest.py), fingerprints (fingerprint.py), `CompiledAgent`; untrusted
files are checked before they are read (files.py) and versions signed when a key is set (signing.py).
"""

from purpose_dspy.artifacts.compiled import CompiledAgent
from purpose_dspy.artifacts.fingerprint import (
           fingerprint_differences,
           signature_fingerprint,
)
from purpose_dspy.artifacts.manifest import Manifest, diff, read_manifest
from purpose_dspy.artifacts.store import (
           components_of,
           load,
           promote,
           save_artifact,
           sign,
           verify,
)
from purpose_dspy.artifacts.signing import signing_key
from purpose_dspy.artifacts.versions import (
           parse_ref,
           promoted_stack,
           resolve,
           rollback,
           versions,
)
from purpose_dspy.errors import StaleArtifactError

__all__ = ["CompiledAgent", "Manifest", "StaleArtifactError", "components_of", "diff", "fingerprint_differences", "load",
           "parse_ref", "promote", "promoted_stack", "resolve", "read_manifest", "rollback", "save_artifact", "sign",
           "signature_fingerprint", "signing_key", "verify", "versions"]
