"""Promotion: a version moves through environments (``kind: Pipeline``) past gates."""
