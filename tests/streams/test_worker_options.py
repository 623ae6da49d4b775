"""`tradecore worker` refuses a transaction interval it cannot honour, naming the option, before touching Kafka."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TRADECORE = str(Path(sys.executable).with_name("tradecore"))


@pytest.mark.parametrize(("args", "env"), [(["--batch-ms", "0"], {}), ([], {"TRADECORE_BATCH_MS": "-5"})])
def test_a_batch_interval_below_one_ms_is_refused(args: list[str], env: dict[str, str]) -> None:
    out = subprocess.run(
        [TRADECORE, "worker", "risk", *args],
        env={**os.environ, "COLUMNS": "200", **env},  # one line per message: nothing wrapped mid-phrase
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "--batch-ms" in out.stderr
    assert "greater than or equal to 1" in out.stderr
