"""Compiled artifacts: versioned, hashed, JSON-only directories that applications load in one call.

`load` / `save_artifact` / `verify` / `promote` / `sign` (store.py), `versions` / `promoted_stack` / `rollback`
(versions.py), `approve` / `reject` of pending versions (approval.py), `Manifest` and `diff` (manifest.py),
fingerprints (fingerprint.py), `CompiledAgent`; untrusted files are checked before they are read (files.py)
and versions signed when a key is set (signing.py); what a monitor records of a version (records.py).
"""

from purpose_dspy.artifacts.approval import approve, pending_versions, reject
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
           approval_state,
           parse_ref,
           promoted_stack,
           resolve,
           rollback,
           status,
           versions,
)
from purpose_dspy.errors import StaleArtifactError

__all__ = ["CompiledAgent", "Manifest", "StaleArtifactError", "approval_state", "approve", "components_of", "diff",
           "fingerprint_differences", "load", "parse_ref", "pending_versions", "promote", "promoted_stack", "reject",
           "resolve", "read_manifest", "rollback", "save_artifact", "sign", "signature_fingerprint", "signing_key",
           "status", "verify", "versions"]
