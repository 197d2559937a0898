"""Test harness: real processes (Envoy, redis-server) on free ports and generated TLS material.

Everything here cleans up after itself; tests/conftest.py wraps it in pytest fixtures.
"""
