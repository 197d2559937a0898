"""Mesh CA: signs X.509-SVIDs for workloads that prove their ServiceAccount with a token."""
