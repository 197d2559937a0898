"""Global rate limiting for Envoy: envoyproxy/ratelimit-compatible config, limiter, RLS."""
