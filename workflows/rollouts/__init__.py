"""Rollouts: the Rollout spec, the strategies (canary, blue-green, rolling, recreate), what
they share (base, host steps, targets, database), and the emergency rollback."""
