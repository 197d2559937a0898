"""Where the repository and the read-only ``shared/`` folder beside it are.

CI clones the repository into a fresh folder with a copy of ``shared/`` next to it, so paths
are always relative to this checkout, never absolute.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance"
REFERENCE = SHARED / "reference"
