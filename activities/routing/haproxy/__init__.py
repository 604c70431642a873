"""The HAProxy router, one file per job.

router.py   HAProxyRouter: the change protocol (check, runtime session, persist, reload)
plan.py     pure: the backend file, per-server weights, the commands a change takes
runtime.py  the admin-socket session and what the running backend holds
"""
