"""Monitors: ``kind: ServiceMonitor``, its schedule, the scheduled check and the self-healer."""
