"""``meshguard agent``: the in-pod side of workload identity (key, CSR, files for Envoy SDS)."""
