"""Where things are: this checkout, and the shared BFCL data CI clones beside it."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BFCL = REPO.parent / "shared" / "data" / "bfcl"
FIXTURES = REPO / "tests" / "fixtures"
