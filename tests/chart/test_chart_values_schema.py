"""values.schema.json covers every value, rejects bad ones clearly, and matches the README table."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.chart import values_table
from tests.chart.helm import Helm, HelmError


def _objects(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path or "<root>", node)]
    for key, child in node.get("properties", {}).items():
        out += _objects(child, f"{path}.{key}" if path else key)
    return out


def _uncovered(values: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Keys of values.yaml the schema does not describe."""
    if not isinstance(values, dict) or "properties" not in schema:
        return []
    missing = []
    for key, value in values.items():
        dotted = f"{path}.{key}" if path else key
        child = schema["properties"].get(key)
        if child is None:
            missing.append(dotted)
        else:
            missing += _uncovered(value, child, dotted)
    return missing


def test_schema_describes_every_value_and_nothing_else() -> None:
    schema, values = values_table.load()
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values, schema)
    assert _uncovered(values, schema) == []
    for path, node in _objects(schema):
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"
    undescribed = [
        p for p, node, _ in values_table.leaves(schema, values) if not node.get("description")
    ]
    assert undescribed == []


def test_readme_values_table_matches_the_schema() -> None:
    assert values_table.readme_table() == values_table.table(), (
        "charts/meshguard/README.md is out of date: run `python -m tests.chart.values_table`"
    )
    documented = values_table.readme_table()
    for path, _, _ in values_table.leaves(*values_table.load()):
        assert f"| `{path}` |" in documented


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"redis": {"mode": "bogus"}},
            "at '/redis/mode': value must be one of 'internal', 'external', 'sentinel', 'cluster'",
        ),
        ({"authz": {"replicaCount": -1}}, "at '/authz/replicaCount': minimum: got -1, want 0"),
        ({"webhook": {"timeoutSeconds": 31}}, "at '/webhook/timeoutSeconds': maximum: got 31"),
        ({"authz": {"polices": []}}, "at '/authz': additional properties 'polices' not allowed"),
        (
            {"ratelimit": {"settings": {"failopen": True}}},
            "at '/ratelimit/settings': additional properties 'failopen' not allowed",
        ),
        (
            {"ratelimit": {"settings": {"fail-open": "yes"}}},
            "at '/ratelimit/settings/fail-open': got string, want boolean",
        ),
        ({"redis": {"url": "redis://cache:6379"}}, "at '/redis/url'"),
        (
            {
                "authz": {
                    "policies": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}]
                }
            },
            "at '/authz/policies/0/kind': value must be one of 'AuthorizationPolicy'",
        ),
        ({"image": {"digest": "latest"}}, "at '/image/digest'"),
        ({"webhook": {"failurePolicy": "Sometimes"}}, "value must be one of 'Fail', 'Ignore'"),
        (
            {"redis": {"mode": "external"}},
            "redis.url is required when redis.mode=external",
        ),
        (
            {"redis": {"mode": "sentinel", "sentinel": {"addresses": ["s0:26379"]}}},
            "redis.sentinel.addresses needs at least two host:port entries",
        ),
        (
            {"redis": {"mode": "cluster"}},
            "redis.cluster.addresses needs at least one host:port seed node",
        ),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(
    helm: Helm, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(HelmError) as refused:
        helm.template(values)
    assert message in str(refused.value)
