"""How a version runs on a host: the ``Platform`` seam.

base.py        Platform (Protocol), Target, ActionResult
spec.py        PlatformSpec (one-of) and CommandPlatformSpec: the ``platform:`` vocabulary
command.py     CommandPlatform: templated argv per action (ssh + a deploy script on VMs)
process.py     running one command: own process group, timeout, output tail, progress
factory.py     platform_for(spec, service, clients)
models.py      the activities' inputs
activities.py  PlatformActivities: the platform_action and current_version activities
"""
