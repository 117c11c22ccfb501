"""Write docs/config.md, the reference of every config key, from the pydantic models.

The models are the single source: a test fails when docs/config.md is out of date.
Usage: python scripts/gen_config_docs.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from lastwatt.config import Config

OUT = Path(__file__).resolve().parent.parent / "docs" / "config.md"

HEADER = """# Config reference

Every key of the TOML config, with its default. Generated from the models in the
`lastwatt/config/` package by `python scripts/gen_config_docs.py`; do not edit by hand.
Validate a file with `lastwatt check FILE`. Unknown keys are errors.

```toml
seed = 7
rounds = 720            # 30 days of hourly rounds

[businesses]
count = 20
active_set = 5

[population.policies]   # the population mix: shares sum to 1
softmax = 0.6
herding = 0.3
loyal = 0.1
```
"""


def _type_name(annotation: object) -> str:
    text = str(annotation).replace("typing.", "").replace("pathlib._local.", "")
    text = text.replace("pathlib.", "").replace("<class '", "").replace("'>", "")
    return text.replace("|", "\\|")


def _default(field) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return ""
    return f"`{value!r}`".replace("|", "\\|")


def section_rows(model: type[BaseModel], prefix: str) -> tuple[list[str], list[tuple]]:
    rows, subsections = [], []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            subsections.append((f"{prefix}{name}", ann))
            continue
        desc = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name}` | {_type_name(ann)} | {_default(field)} | {desc} |")
    return rows, subsections


def render() -> str:
    out = [HEADER]
    todo: list[tuple[str, type[BaseModel]]] = [("", Config)]
    while todo:
        prefix, model = todo.pop(0)
        rows, subs = section_rows(model, f"{prefix}." if prefix else "")
        out.append(f"\n## `[{prefix}]`\n" if prefix else "\n## Top level\n")
        if model.__doc__ and prefix:
            out.append(model.__doc__.strip().splitlines()[0] + "\n")
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        out.extend(rows)
        todo.extend(subs)
    return "\n".join(out) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python scripts/gen_config_docs.py")
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
