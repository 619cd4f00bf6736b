"""The README's two commands are what users and CI run: keep them consistent."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    return [ln for ln in lines if ln.startswith("python3 -m venv .venv && ")]


def test_readme_has_two_commands_pinning_cpu_torch():
    demo, test = _commands()
    assert "pip install torch==2.13.0 -e ." in demo and demo.endswith("toposeg demo")
    assert 'pip install torch==2.13.0 -e ".[test]"' in test and "pytest" in test


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _commands()[1] in ci


def test_package_requirement_is_a_range_not_a_pin():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"torch>=2.1"' in text and "torch==" not in text


def test_readme_python_example_runs():
    text = (ROOT / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["loss"].ndim == 0 and namespace["loss"].item() > 0


def test_readme_lists_every_extra_and_the_cpu_wheel_index():
    import re

    text = (ROOT / "README.md").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    section = pyproject.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = re.findall(r"^([a-z]+) = \[", section, flags=re.M)
    assert extras and all(f'".[{name}]"' in text or f"[{name}]" in text for name in extras), extras
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert "not built yet" not in text


def test_readme_names_every_subcommand():
    from toposeg.commands import COMMANDS

    text = (ROOT / "README.md").read_text()
    line = next(ln for ln in text.split("\n\n") if "`toposeg --help` lists the subcommands" in ln)
    assert all(f"`{name}`" in line for name in COMMANDS), sorted(COMMANDS)
