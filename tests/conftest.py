from hypothesis import HealthCheck, settings

# Property tests check what is true of every input, not how fast: Hypothesis' 200 ms
# per-example deadline and its too-slow health check only measure the machine, and on two
# cores shared with the rest of the suite they failed tests that were right.
settings.register_profile("deployflow", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("deployflow")

pytest_plugins = [
    "tests.fixtures.temporal",
    "tests.fixtures.nginx",
    "tests.fixtures.haproxy",
    "tests.fixtures.prometheus",
    "tests.fixtures.alertmanager",
    "tests.fixtures.notify",
    "tests.fixtures.webhooks",
    "tests.fixtures.fleet",
    "tests.fixtures.postgres",
    "tests.fixtures.tls",
    "tests.fixtures.api",
    "tests.fixtures.worker",
    "tests.fixtures.agents",
    "tests.fixtures.kube",
    "tests.fixtures.security_servers",
]
