"""The HTTP/2 wire pieces :mod:`meshguard.common.leangrpc` is built from (RFC 9113, RFC 7541)."""
