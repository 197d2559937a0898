"""Sidecar injection: decide, render the sidecar, build the JSONPatch (``/mutate``, ``inject``)."""
