"""The standing mutation check as a test: ``pytest -m mutation``.

Deselected from the default run (it runs the behavioural suite seven times,
about a minute on two cores); CI also runs ``python tests/mutation.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("mutation.py")


@pytest.mark.mutation
@pytest.mark.timeout(900)
def test_every_applicable_mutant_is_caught_and_the_clean_suite_passes() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SURVIVED" not in done.stdout
