pytest_plugins = [
    "tests.fixtures.temporal",
    "tests.fixtures.nginx",
    "tests.fixtures.haproxy",
    "tests.fixtures.prometheus",
    "tests.fixtures.alertmanager",
    "tests.fixtures.notify",
    "tests.fixtures.fleet",
    "tests.fixtures.postgres",
    "tests.fixtures.tls",
    "tests.fixtures.api",
    "tests.fixtures.security_servers",
]
