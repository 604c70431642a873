"""Kubernetes: the official ``kubernetes`` client behind deployflow's platform and routers.

``activities.kubernetes.testing`` is the API server double tests (and the demo) run against;
nothing under ``workflows/`` imports it.
"""
