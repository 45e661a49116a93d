import subprocess
import sys


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "vidnav.cli", *args], capture_output=True, text=True)


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0, r.stderr
    assert "vidnav" in r.stdout
