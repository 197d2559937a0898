"""``helm lint --strict`` passes for the defaults and for every toggle."""

from __future__ import annotations

import pytest
import yaml

from tests.chart.helm import CHART, Helm
from tests.chart.toggles import TOGGLES


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_lint_strict(helm: Helm, toggle: str) -> None:
    out = helm.lint(TOGGLES[toggle])
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_app_version_is_the_package_version() -> None:
    import tomllib

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == pyproject["project"]["version"]
