"""The README's values table, derived from values.schema.json and the defaults in values.yaml.

``python -m tests.chart.values_table`` rewrites the table in charts/meshguard/README.md;
tests/chart/test_chart_values_schema.py fails when the README and the schema disagree.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from tests.chart.helm import CHART

README = CHART / "README.md"
START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"
_UNSET = object()


def load() -> tuple[dict[str, Any], dict[str, Any]]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return schema, values


def leaves(
    schema: Mapping[str, Any], values: Any, path: str = ""
) -> Iterator[tuple[str, Any, Any]]:
    """(dotted path, schema node, default) for every value the schema describes as a whole."""
    for key, node in schema["properties"].items():
        dotted = f"{path}.{key}" if path else key
        default = values.get(key, _UNSET) if isinstance(values, dict) else _UNSET
        if "properties" in node:
            yield from leaves(node, default if isinstance(default, dict) else {}, dotted)
        else:
            yield dotted, node, default


def _type(node: Mapping[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "any")
    return " \\| ".join(kind) if isinstance(kind, list) else kind


def _default(value: Any) -> str:
    if value is _UNSET:
        return "(service default)"
    text = json.dumps(value, separators=(", ", ": "))
    return f"`{text}`".replace("|", "\\|")


def table() -> str:
    schema, values = load()
    lines = ["| value | type | default | description |", "|---|---|---|---|"]
    for path, node, default in leaves(schema, values):
        description = node.get("description", "").replace("|", "\\|")
        lines.append(f"| `{path}` | {_type(node)} | {_default(default)} | {description} |")
    return "\n".join(lines)


def readme_table() -> str:
    text = README.read_text()
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write() -> None:
    text = README.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{START}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    write()
    sys.exit(0)
