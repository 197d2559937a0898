"""Deployments, Services, ServiceAccounts, RBAC, PDBs and HPAs as rendered by the chart."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.helm import NAMESPACE, Helm, HelmError, container, find, one
from tests.chart.toggles import TOGGLES

SERVICES = ("authz", "ratelimit", "webhook", "ca")
# Components that call the Kubernetes API and so get a ServiceAccount token.
API_CLIENTS = ("webhook", "ca")
Rendered = dict[str, list[dict[str, Any]]]


@pytest.mark.parametrize("service", SERVICES)
def test_pods_are_hardened(rendered: Rendered, service: str) -> None:
    deployment = one(rendered["defaults"], "Deployment", f"-{service}")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "limits" in c["resources"] and "requests" in c["resources"]
        # a read-only root still needs a writable /tmp
        assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])
    assert pod["automountServiceAccountToken"] is (service in API_CLIENTS)


@pytest.mark.parametrize("service", SERVICES)
def test_probes_hit_the_admin_health_endpoints(rendered: Rendered, service: str) -> None:
    c = container(one(rendered["defaults"], "Deployment", f"-{service}"), service)
    admin = next(p for p in c["ports"] if p["name"] == "http-admin")
    assert f"--admin-port={admin['containerPort']}" in c["args"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-admin"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http-admin"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-admin"}


@pytest.mark.parametrize("service", SERVICES)
def test_replicas_spread_over_nodes_and_zones(rendered: Rendered, service: str) -> None:
    soft = one(rendered["defaults"], "Deployment", f"-{service}")["spec"]["template"]["spec"]
    preferred = soft["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    term = preferred[0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == service
    assert soft["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    hard = one(rendered["hard-ha-digest"], "Deployment", f"-{service}")["spec"]["template"]["spec"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in hard["affinity"]["podAntiAffinity"]
    assert hard["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"


def test_image_defaults_to_app_version_and_digest_wins(rendered: Rendered) -> None:
    image = container(one(rendered["defaults"], "Deployment", "-authz"))["image"]
    assert image == "ghcr.io/meshguard/meshguard:0.1.0"
    pinned = container(one(rendered["hard-ha-digest"], "Deployment", "-authz"))["image"]
    assert pinned == "ghcr.io/meshguard/meshguard@sha256:" + "ab" * 32


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_services_select_their_pods_and_name_ports_by_protocol(
    rendered: Rendered, toggle: str
) -> None:
    manifests = rendered[toggle]
    for service in find(manifests, "Service"):
        selector = service["spec"]["selector"]
        pods = [
            d
            for d in find(manifests, "Deployment")
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(pods) == 1, f"Service {service['metadata']['name']} selects {len(pods)}"
        port_names = {
            p["name"] for c in pods[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["name"].split("-")[0] in {"grpc", "http", "https", "tcp"}, port
            assert port["targetPort"] in port_names
            if port["name"].startswith("grpc-"):
                assert port.get("appProtocol") == "grpc"


def test_grpc_ports_are_named_for_istio(rendered: Rendered) -> None:
    ports = {
        s["metadata"]["name"]: {p["name"]: p["port"] for p in s["spec"]["ports"]}
        for s in find(rendered["defaults"], "Service")
    }
    assert ports["mg-meshguard-authz"]["grpc-authz"] == 9000
    assert ports["mg-meshguard-ratelimit"]["grpc-ratelimit"] == 8081
    assert ports["mg-meshguard-webhook"]["https-webhook"] == 443
    assert ports["mg-meshguard-ca"]["grpc-ca"] == 15012


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_disruption_budgets_and_autoscalers_target_real_deployments(
    rendered: Rendered, toggle: str
) -> None:
    manifests = rendered[toggle]
    deployments = {d["metadata"]["name"]: d for d in find(manifests, "Deployment")}
    for pdb in find(manifests, "PodDisruptionBudget"):
        target = deployments[pdb["metadata"]["name"]]
        assert pdb["spec"]["selector"]["matchLabels"] == target["spec"]["selector"]["matchLabels"]
    for hpa in find(manifests, "HorizontalPodAutoscaler"):
        target = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "the HPA owns the replica count"


def test_hpa_renders_cpu_and_memory_targets(rendered: Rendered) -> None:
    hpas = find(rendered["hpa"], "HorizontalPodAutoscaler")
    assert len(hpas) == len(SERVICES)
    metrics = {m["resource"]["name"]: m["resource"]["target"] for m in hpas[0]["spec"]["metrics"]}
    assert metrics == {
        "cpu": {"type": "Utilization", "averageUtilization": 75},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    assert not find(rendered["defaults"], "HorizontalPodAutoscaler")


def test_pdb_max_unavailable_replaces_min_available(rendered: Rendered) -> None:
    pdb = one(rendered["hard-ha-digest"], "PodDisruptionBudget", "-authz")
    assert pdb["spec"] == {**pdb["spec"], "maxUnavailable": "50%"}
    assert "minAvailable" not in pdb["spec"]


WEBHOOK_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["get", "list", "watch"]},
]
# The mesh CA verifies workload tokens and publishes its root bundle: the namespaces labelled for
# injection are listed, and one ConfigMap name is read and written in them.
CA_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["meshguard-ca-root-cert"],
        "verbs": ["get", "update"],
    },
]


@pytest.mark.parametrize(
    ("toggle", "expected"),
    [
        ("defaults", {"webhook": WEBHOOK_RULES, "ca": CA_RULES}),
        ("mesh-ca-existing", {"webhook": WEBHOOK_RULES, "ca": CA_RULES[:1]}),
        ("webhook-only", {"webhook": WEBHOOK_RULES, "ca": CA_RULES}),
        ("ca-only", {"ca": CA_RULES}),
        ("nothing", {}),
    ],
)
def test_api_rights_are_exactly_what_each_component_needs(
    rendered: Rendered, toggle: str, expected: dict[str, list[dict[str, Any]]]
) -> None:
    manifests = [m for m in rendered[toggle] if not _is_hook(m)]
    assert not find(manifests, "Role") and not find(manifests, "RoleBinding")
    roles = {r["metadata"]["name"]: r["rules"] for r in find(manifests, "ClusterRole")}
    assert roles == {f"mg-meshguard-{c}-meshguard-system": rules for c, rules in expected.items()}
    bindings = find(manifests, "ClusterRoleBinding")
    assert len(bindings) == len(expected)
    accounts = {a["metadata"]["name"] for a in find(manifests, "ServiceAccount")}
    for binding in bindings:
        component = binding["metadata"]["labels"]["app.kubernetes.io/component"]
        assert binding["roleRef"]["name"] == f"mg-meshguard-{component}-meshguard-system"
        pod = one(manifests, "Deployment", f"-{component}")["spec"]["template"]["spec"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": NAMESPACE}
        ]
    names = [
        d["spec"]["template"]["spec"]["serviceAccountName"]
        for d in find(manifests, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] in SERVICES
    ]
    assert set(names) <= accounts
    assert len(names) == len(set(names)), "every component runs under its own ServiceAccount"


def _is_hook(manifest: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (manifest["metadata"].get("annotations") or {})


def test_helm_test_may_only_create_virtual_services_in_its_namespace(rendered: Rendered) -> None:
    hooks = [m for m in rendered["defaults"] if _is_hook(m)]
    role = one(hooks, "Role")
    assert role["metadata"]["namespace"] == "default"
    assert role["rules"] == [
        {
            "apiGroups": ["networking.istio.io"],
            "resources": ["virtualservices"],
            "verbs": ["create"],
        }
    ]
    pod = one(hooks, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert one(hooks, "RoleBinding")["subjects"][0]["name"] == pod["spec"]["serviceAccountName"]


def test_memory_backend_is_refused_with_more_than_one_replica(helm: Helm) -> None:
    with pytest.raises(HelmError, match=r"ratelimit.backend=memory .* needs exactly one replica"):
        helm.template({"ratelimit": {"backend": "memory", "replicaCount": 2}})
    with pytest.raises(HelmError, match="autoscaling up to 10"):
        helm.template(
            {
                "ratelimit": {
                    "backend": "memory",
                    "replicaCount": 1,
                    "autoscaling": {"enabled": True},
                }
            }
        )


def test_memory_backend_runs_without_redis(rendered: Rendered) -> None:
    manifests = rendered["memory"]
    c = container(one(manifests, "Deployment", "-ratelimit"))
    assert "--backend=memory" in c["args"]
    assert not any(a.startswith("--redis-url") for a in c["args"])
    assert not any(e["name"].startswith("REDIS_") for e in c["env"])
    assert not find(manifests, "Deployment", "-redis")
