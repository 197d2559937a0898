"""Istio-exact ext_authz service: AuthorizationPolicy + RequestAuthentication behind Envoy."""
