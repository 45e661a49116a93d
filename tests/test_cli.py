import subprocess
import sys


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "vidnav.cli", *args], capture_output=True, text=True)


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0, r.stderr
    assert "vidnav" in r.stdout


def test_unknown_option_is_a_usage_error_not_a_traceback():
    r = run_cli("eval", "--no-such-option")
    assert r.returncode == 2
    assert "No such option" in r.stderr and "--no-such-option" in r.stderr
    assert "Traceback" not in r.stderr
