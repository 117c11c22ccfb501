import re
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


def test_docs_cite_only_files_that_are_in_the_repository():
    # a path in backticks or a relative link must resolve from the repository root, the page's
    # folder or a package folder (docs/bridge.md says `dialects/base.py` of firmware_bridge)
    bases = [ROOT, ROOT / "docs", ROOT / "lastwatt", ROOT / "firmware_bridge"]
    missing = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        links = [m.group(1) for m in re.finditer(r"\]\(([^)#\s]+)[^)]*\)", text)
                 if not re.match(r"[a-z]+:", m.group(1))]
        paths = [t for t in re.findall(r"`([\w./-]+\.(?:py|md|toml|sh|yml|yaml|json|lock))`", text)
                 if "/" in t or t.endswith(".md")]
        missing += [(page.name, p) for p in links + paths
                    if not any((base / p).exists() for base in bases)]
    assert missing == []
