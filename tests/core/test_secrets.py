"""``core.secrets``: digests at rest, constant-time checks, and the import arrow it straightens."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from agenthub.core import auth, pairing
from agenthub.core.secrets import hash_secret, secret_matches


def test_hash_and_match() -> None:
    digest = hash_secret("s3cret")
    assert digest == hashlib.sha256(b"s3cret").hexdigest() and "s3cret" not in digest
    assert secret_matches("s3cret", digest)
    assert not secret_matches("s3cret ", digest) and not secret_matches("", digest)
    assert not secret_matches(None, digest) and not secret_matches("s3cret", None)


def _relative_imports(module: object) -> set[str]:
    """Modules of ``agenthub.core`` imported at run time (``if TYPE_CHECKING:`` blocks left out)."""
    tree = ast.parse(Path(str(getattr(module, "__file__", ""))).read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module)
    return found


def test_pairing_no_longer_imports_auth() -> None:
    """auth names pairing's type (for typing only); pairing needs only core.secrets: the arrow runs one way."""
    assert "auth" not in _relative_imports(pairing)
    assert "secrets" in _relative_imports(pairing) and "secrets" in _relative_imports(auth)
    assert "pairing" not in _relative_imports(auth)
