"""The Python examples in docs/downstream.md run as written and print what the page says."""

import re
from pathlib import Path

import pytest

pytest.importorskip("networkx")
pytest.importorskip("skan")

DOC = Path(__file__).resolve().parents[1] / "docs" / "downstream.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if DOC.is_file() else []


def test_doc_has_examples():
    assert len(BLOCKS) == 2


def test_graph_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[0], f"{DOC.name}[0]", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "6 nodes ['end', 'junction']"
    assert lines[1] == "ok 38.0 76.83 2.022" and lines[2].startswith("unreachable 46.0 inf")
    assert float(lines[1].split()[2]) == pytest.approx(74 + 2 * 2**0.5, abs=0.005)  # the page's hand count
    assert lines[3:6] == ["0.5", "1.0", "0.0"]
    assert (tmp_path / "routes.png").is_file()


def test_mesh_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[1], f"{DOC.name}[1]", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 ") and lines[0].endswith(" 4224") and lines[1] == "2"
    assert (tmp_path / "ball.ply").is_file() and (tmp_path / "panel.png").is_file()
