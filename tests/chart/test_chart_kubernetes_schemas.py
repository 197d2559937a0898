"""Every rendered Kubernetes object is valid against the Kubernetes API schemas.

The schemas ship with ``kubernetes-validate`` (offline, strict variant: unknown fields are
errors). Custom resources are checked elsewhere: Istio and meshguard kinds by meshguard's own
validators, cert-manager and Prometheus Operator kinds by their expected shapes in other tests.
"""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.chart.toggles import TOGGLES

KUBERNETES_VERSION = "1.33"
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("networking.istio.io/v1alpha3", "EnvoyFilter"),
    ("install.istio.io/v1alpha1", "IstioOperator"),
}


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_every_manifest_matches_the_kubernetes_schema(
    rendered: dict[str, list[dict[str, object]]], toggle: str
) -> None:
    problems = []
    for manifest in rendered[toggle]:
        key = (manifest["apiVersion"], manifest["kind"])
        if key in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{key[1]} {manifest['metadata']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"no schema, and not a known custom kind: {exc.message}")
    assert not problems, "\n".join(problems)


def test_a_schema_violation_is_caught() -> None:
    """The validator really runs: a Service port given as a string is rejected."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": "grpc"}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)
