pytest_plugins = [
    "tests.fixtures.temporal",
    "tests.fixtures.nginx",
    "tests.fixtures.haproxy",
    "tests.fixtures.prometheus",
    "tests.fixtures.fleet",
    "tests.fixtures.postgres",
]
