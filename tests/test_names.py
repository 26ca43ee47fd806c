"""One name per concept (issue #22 point 3): research/notes/22_rename.py, run as a program with --check, finds
no old name left in the tree (an old word stays only on lines marked ``rename: keep``, for files written before)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_old_name_is_left_in_the_tree():
    done = subprocess.run(
        [sys.executable, str(ROOT / "research" / "notes" / "22_rename.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
