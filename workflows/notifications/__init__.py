"""Notifications: the spec.notifications/onRollback vocabulary (spec.py) and the delivery of a
run's Slack thread and webhooks (sender.py); rollouts and pipelines have their notifiers."""
