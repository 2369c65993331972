"The notebook → library loop: layering between modules, and the export check that CI relies on."

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def module_numbers() -> dict[str, int]:
    "`tradekit.<module>` → its notebook's number, from the `NN[a-z]_<module>.ipynb` file names."
    found = (re.match(r"(\d+)[a-z]?_(.+)\.ipynb$", p.name) for p in (ROOT / "nbs").glob("*.ipynb"))
    return {f"tradekit.{m[2]}": int(m[1]) for m in found if m}


def imported_tradekit_modules(module: str) -> set[str]:
    path = ROOT / (module.replace(".", "/") + ".py")
    package = module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            names = [node.module] if node.module else [a.name for a in node.names]  # `from . import x`
            out.update(f"{base}.{name}" for name in names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tradekit"):
            out.add(node.module)
    return out


def test_modules_import_only_lower_numbered_modules() -> None:
    numbers = module_numbers()
    assert "tradekit.config" in numbers
    for module, n in numbers.items():
        for dep in imported_tradekit_modules(module):
            assert dep in numbers, f"{module} imports {dep}, which no notebook exports"
            assert numbers[dep] < n, f"{module} ({n}) imports {dep} ({numbers[dep]}): higher or equal layer"


def test_editing_a_notebook_without_export_fails_the_check(tmp_path: Path) -> None:
    for name in ("nbs", "tradekit", ".ci"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    check = ["bash", ".ci/check-export.sh"]
    env = {**os.environ, "BIN": str(BIN)}
    assert subprocess.run(check, cwd=tmp_path, env=env, capture_output=True).returncode == 0

    nb = tmp_path / "nbs" / "00_errors.ipynb"
    nb.write_text(nb.read_text().replace("exit_code: int = 1", "exit_code: int = 3", 1))
    r = subprocess.run(check, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 1
    assert "run nbdev-export" in r.stderr and "tradekit/errors.py" in r.stderr
