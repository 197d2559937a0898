from __future__ import annotations

import pytest

from tests.chart.helm import Helm, find_helm
from tests.chart.toggles import TOGGLES


@pytest.fixture(scope="session")
def helm() -> Helm:
    binary, why = find_helm()
    if binary is None:
        pytest.skip(f"no helm binary: {why}")
    return Helm(binary)


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> dict[str, list[dict[str, object]]]:
    """Every toggle's manifests, rendered once per session."""
    return {name: helm.template(values) for name, values in TOGGLES.items()}
