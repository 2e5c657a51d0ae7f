"""Package the service as a reproducible zipapp: same sources → same bytes → same digest.

Usage: python3 package.py OUTPUT.pyz
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

SRC = Path(__file__).parent / "src"
EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps make the archive reproducible


def package(output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)
    with output.open("wb") as raw:
        raw.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                info = zipfile.ZipInfo(path.relative_to(SRC).as_posix(), date_time=EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    output.chmod(0o755)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 package.py OUTPUT.pyz")
    package(Path(sys.argv[1]))
