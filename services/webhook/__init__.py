"""Admission webhook for mesh configuration: validators, AdmissionReview server, ``analyze``."""
