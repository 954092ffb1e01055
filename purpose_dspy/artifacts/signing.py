"""Optional signing: an HMAC-SHA256 of the manifest under a key from `PURPOSE_DSPY_SIGNING_KEY`.

The hashes catch damage and edits, but whoever rewrites a file can rewrite its sha256, the content hash
and the manifest hash too. A signature is what they cannot recompute without the key. It is over the
manifest's `manifest_hash` (which `read_manifest` has checked against the manifest's canonical bytes,
and the manifest holds every file's sha256), so it covers the whole version. It sits beside the
manifest in a file named `signature` rather than in a manifest field: a field would have to be left
out of the manifest hash, and a signed version's manifest stays byte-identical to an unsigned one's.

With the key set, `save_artifact` writes the signature and every `load`, `verify` and `promote` refuses
a version whose signature is missing or wrong. Without it nothing can be checked: a signature present
is ignored, and `require_signature=True` is a usage error (set the key). The key is read from the
environment when needed and never written, logged or put in a message.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from purpose_dspy.artifacts import files
from purpose_dspy.errors import ArtifactError, UsageError

ENV = "PURPOSE_DSPY_SIGNING_KEY"
SIGNATURE = "signature"
MIN_KEY_BYTES = 16
_SCHEME = b"hmac-sha256:"
_CONTEXT = b"purpose-dspy artifact manifest_hash "  # a MAC of this key over anything else never matches


def signing_key(*, required: bool = False) -> bytes | None:
    """The key from the environment (None when unset; `required`: a usage error then)."""
    value = os.environ.get(ENV, "")
    if not value:
        if required:
            raise UsageError(f"a signature can only be checked with the key: set {ENV} to the key the artifacts "
                             "were signed with")
        return None
    key = value.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(f"{ENV} is shorter than {MIN_KEY_BYTES} bytes; use a long random value, e.g. "
                         "python -c 'import secrets; print(secrets.token_hex(32))'")
    return key


def _mac(key: bytes, manifest_hash: str) -> bytes:
    return _SCHEME + hmac.new(key, _CONTEXT + manifest_hash.encode("ascii"), hashlib.sha256).hexdigest().encode()


def signature_blob(manifest_hash: str) -> bytes | None:
    """The `signature` file's bytes for a manifest with this hash, or None when no key is set."""
    key = signing_key()
    return None if key is None else _mac(key, manifest_hash) + b"\n"


def check(directory: Path, manifest_hash: str, signed: bool, *, require: bool = False) -> None:
    """Refuse the version unless its signature matches (when the key is set; `require`: the key must be)."""
    key = signing_key(required=require)
    if key is None:
        return
    if not signed:
        raise ArtifactError(f"{directory} is not signed and {ENV} is set, so it is refused; sign it after reviewing "
                            f"it (purpose-dspy artifacts sign {directory.parent}@{directory.name}) or recompile it "
                            "with the key set")
    try:
        data = files.read(directory, SIGNATURE)
    except OSError as exc:
        raise ArtifactError(f"{directory}/{SIGNATURE} cannot be read ({exc.strerror}); recompile or re-sign") from exc
    if not hmac.compare_digest(data.strip(), _mac(key, manifest_hash)):
        raise ArtifactError(f"{directory}/{SIGNATURE} does not match the manifest under {ENV}: the version was changed "
                            "after signing, or signed with another key; get it from a trusted source or recompile")
