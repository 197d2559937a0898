"""meshguard: ext_authz, global rate limiting and admission webhook services for Envoy / Istio."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meshguard")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
