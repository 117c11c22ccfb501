import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_config_reference_in_docs_matches_the_config_models():
    proc = subprocess.run([sys.executable, "scripts/gen_config_docs.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_default_example_config_is_exactly_the_built_in_default():
    from lastwatt.config import Config, load_config

    assert load_config(ROOT / "examples" / "default.toml") == Config()

