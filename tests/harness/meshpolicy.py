"""The identity the mesh tests allow and the policy that allows only it: one definition, so
the loopback and the network-namespace tests check the same rule."""

from __future__ import annotations

FRONTEND = "spiffe://cluster.local/ns/default/sa/frontend"
FRONTEND_ONLY_POLICY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: frontend-only, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/frontend"]}}]
"""
