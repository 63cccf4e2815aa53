"""`make demo` runs the installed `scout demo` offline: the whole job, as a user sees it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_ranks_and_matches_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    scout = Path(sys.executable).with_name("scout")
    result = subprocess.run(
        [str(scout), "demo", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert out.count("ranked by how well they match") == 2
    assert "eLife's content profile" in out and "Genome Biology's content profile" in out
    assert "96 new" in result.stderr
    share = int(out.split("top 3 of 12 profiles")[0].rsplit("(", 1)[1].split("%")[0])
    # Twelve journals, random would put the right one in the top 3 a quarter of the time.
    assert share >= 45
    assert (tmp_path / "scout-demo.db").exists()
