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


def test_every_example_config_validates():
    from lastwatt.config import load_config

    examples = [p for p in (ROOT / "examples").glob("*.toml")
                if p.name not in ("bridge.toml",)]  # the bridge has its own config format
    assert len(examples) >= 5
    for path in examples:
        load_config(path)
