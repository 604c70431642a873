"""How a version runs on a host: the ``Platform`` seam.

base.py        Platform (Protocol), Target, ActionResult
command.py     CommandPlatform: templated argv per action (ssh + a deploy script on VMs)
process.py     running one command: own process group, timeout, output tail, progress
activities.py  PlatformSpec (one-of), platform_for, the platform_action and
               current_version activities
"""
