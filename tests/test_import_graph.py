"""scripts/import_graph.py: the vidnav import graph has no cycles and keeps the layer order (issue #32 point 4)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_graph.py"


def _checker():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vidnav_import_graph_is_clean():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "vidnav" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
    graph = _checker()
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "sim/__init__.py": "",
            "sim/a.py": "from vidnav.sim.b import X\n",
            "sim/b.py": "X = 1\ndef f():\n    from . import a\n",
            "sim/c.py": "import vidnav.sim.a\n",
        },
    )
    edges = graph.import_edges(root)
    assert ("vidnav.sim.b", "vidnav.sim.a", 3, True) in edges
    assert ("vidnav.sim.a", "vidnav.sim.b", 1, False) in edges
    assert graph.cycles(edges) == [["vidnav.sim.a", "vidnav.sim.b"]]


def test_checker_finds_an_import_against_the_layer_order(tmp_path):
    graph = _checker()
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": "",
            "sim/__init__.py": "",
            "sim/world.py": "from vidnav import errors\ndef f():\n    from vidnav.eval import metrics\n",
            "eval/__init__.py": "",
            "eval/metrics.py": "from vidnav.sim.world import f\n",
        },
    )
    edges = graph.import_edges(root)
    assert graph.violations(edges) == [("vidnav.sim.world", "vidnav.eval.metrics", 3, True)]
