"""benchmarks/gpu.py must run end to end before any device time is spent: its --quick rehearsal on the CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_script_quick_rehearsal_on_cpu(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--quick", "--device", "cpu",
                           "--out", str(tmp_path), "--steps", "equality,skeleton,table2"],
                          capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    eq = json.loads((tmp_path / "gpu_equality.json").read_text())
    assert eq["all_equal"] is True and len(eq["rows"]) >= 6
    assert "device" in eq["meta"] and eq["meta"]["quick"] is True
    speed = json.loads((tmp_path / "gpu_skeleton.json").read_text())
    assert all(r["skimage_cpu_s"] > 0 for r in speed["rows"])
    table2 = json.loads((tmp_path / "gpu_table2.json").read_text())
    for key in ("2d_fp32", "3d_fp32", "2d_bf16", "3d_bf16"):
        assert "error" not in table2[key], table2[key]


def test_gpu_script_refuses_unknown_steps(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--out", str(tmp_path),
                           "--steps", "equality,tabel2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown steps ['tabel2']" in proc.stderr
