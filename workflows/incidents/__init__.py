"""Incidents: the runbook spec (``kind: Runbook``) and the IncidentRunbook workflow."""
