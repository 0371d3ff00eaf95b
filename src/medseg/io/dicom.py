"""DICOM (placeholder until the DICOM reader lands): detection only."""
from __future__ import annotations

from pathlib import Path


def looks_like_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
        return len(head) == 132 and head[128:132] == b"DICM"
    except OSError:
        return False
