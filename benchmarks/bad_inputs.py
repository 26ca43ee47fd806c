"""The bad-input catalogue (issues #15, #27) as a benchmark: every case through `unlearn` as its own process.

    python benchmarks/bad_inputs.py --code /work/main --out runs/bad_inputs/main     # before
    python benchmarks/bad_inputs.py --code .          --out runs/bad_inputs/branch   # after

The cases live in ``tests/bad_input_catalogue.py`` (``tests/test_bad_inputs.py`` runs them in one process);
this script runs each as a process with ``PYTHONPATH=<code>`` and writes ``<out>/results.json`` +
``<out>/table.md``. ``--only NAME...`` runs a subset (and updates an earlier results.json).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bad_input_catalogue import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
