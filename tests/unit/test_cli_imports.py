"""The CLI starts fast because it imports little (DESIGN §6: ≤ 0.3 s for commands that only
talk to Temporal, measured by bench/cli_latency.py). These pin what is imported when: the
parser imports nothing heavy, a command that only talks to Temporal imports the SDK's
client and no spec, model or workflow module, and every command still finds its handler.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import subprocess
import sys
import textwrap

import pytest

import tests.workflows.test_pipeline
from starters.cli import build_parser, parse_args
from starters.handler import Handler
from tests.fixtures.cli import AUDIT, REPO
from workflows.core import names


def audited(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``AUDIT`` + ``code`` in a fresh interpreter from the repository root."""
    return subprocess.run(
        [sys.executable, "-c", AUDIT + textwrap.dedent(code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """``{"rollout status": parser, ...}`` for every (nested) subcommand of ``parser``."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found |= {f"{name} {k}": v for k, v in subcommands(sub).items()}
    return found


def leaves() -> dict[str, argparse.Namespace]:
    """The defaults (``func``, ``plain_payloads`` …) of every runnable subcommand."""
    return {
        name: argparse.Namespace(**sub._defaults)
        for name, sub in subcommands(build_parser()).items()
        if "func" in sub._defaults
    }


def test_importing_the_cli_imports_neither_temporalio_nor_any_spec_or_workflow_code():
    done = audited(
        """
        import starters.cli
        temporal = sorted(m for m in sys.modules if m.partition(".")[0] == "temporalio")
        print(heavy_imports() + temporal)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_help_lists_every_command_and_every_subcommand_help_renders():
    parser = build_parser()
    top = parser.format_help()
    listed = re.findall(r"^    (\S+) ", top, flags=re.MULTILINE)
    assert listed == [
        "dev-server",
        "worker",
        "rollout",
        "analysis",
        "pipeline",
        "rollback",
        "history",
        "incident",
        "monitor",
        "router",
        "ui-views",
        "serve",
        "report",
        "codec-server",
    ]
    every = subcommands(parser)
    for name, sub in every.items():
        assert sub.format_help().startswith(f"usage: deployflow {name}")
    assert {
        "rollout status",
        "rollout promote",
        "rollout simulate",
        "analysis run",
        "pipeline approve",
        "incident ack",
    } <= set(every)


def test_the_parser_for_one_command_builds_that_command_as_the_whole_parser_does():
    whole = build_parser()
    assert build_parser(only="").format_help() == whole.format_help()
    every = subcommands(whole)
    for group in ("rollout", "analysis", "pipeline", "incident", "monitor", "router"):
        partial = subcommands(build_parser(only=group))
        mine = {name: sub for name, sub in partial.items() if name.startswith(f"{group} ")}
        assert set(mine) == {name for name in every if name.startswith(f"{group} ")}
        for name, sub in mine.items():
            assert sub.format_help() == every[name].format_help()
            assert sub._defaults.keys() == every[name]._defaults.keys()
        others = {name for name in partial if " " in name} - set(mine)
        assert others == set(), group  # the other groups were left empty


@pytest.mark.parametrize(
    "words",
    [
        ["rollout", "status", "checkout"],
        ["--profile", "staging", "rollout", "status", "checkout"],
        ["--profile=staging", "rollout", "status", "checkout"],
    ],
)
def test_the_command_is_found_after_the_top_level_options(words):
    args = parse_args(words)
    assert (args.command, args.rollout_command, args.name) == ("rollout", "status", "checkout")
    assert args.profile == (None if words[0] == "rollout" else "staging")


def test_help_runs_as_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "starters.cli", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"\n    rollout +start, watch and steer rollouts\n", done.stdout)


def test_every_command_names_a_handler_that_exists_and_takes_what_dispatch_passes():
    for name, defaults in leaves().items():
        func = defaults.func.resolve() if isinstance(defaults.func, Handler) else defaults.func
        # dispatch passes (args) without Temporal, else (args, config, client).
        arity = 1 if getattr(defaults, "needs_client", True) is False else 3
        assert len(inspect.signature(func).parameters) == arity, name
        assert inspect.iscoroutinefunction(func) is (arity == 3), name
        prepare = getattr(defaults, "prepare", None)
        if prepare is not None:
            assert len(inspect.signature(prepare.resolve()).parameters) == 1, name


def test_commands_that_only_talk_to_temporal_import_no_spec_model_or_workflow_module():
    light = sorted(
        {
            d.func.target.partition(":")[0]
            for d in leaves().values()
            if getattr(d, "plain_payloads", False)
        }
    )
    assert "starters.rollouts" in light
    assert "starters.incidents" in light
    done = audited(
        f"""
        import importlib
        for module in {light!r}:
            importlib.import_module(module)
        print(heavy_imports())
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("argv", [["rollout", "list"], ["incident", "status", "x"]])
def test_a_light_command_all_the_way_to_connecting_imports_nothing_heavy(argv):
    env = {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = audited(
        f"""
        import os
        from starters.cli import main
        code = main({argv!r})
        print(code, heavy_imports(), flush=True)
        os._exit(0)  # the SDK's threads can abort finalisation (see starters.cli.entry)
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3 []"  # exit 3: unreachable, as the address says
    assert "Temporal is unreachable at 127.0.0.1:1" in done.stderr


def test_the_plain_names_are_the_ones_the_workflows_register():
    from workflows.incidents.models import WORKFLOW_TYPE
    from workflows.monitors.models import healer_workflow_id
    from workflows.monitors.spec import monitor_schedule_id
    from workflows.rollouts.emergency import EmergencyRollback
    from workflows.rollouts.registry import WORKFLOW_TYPES
    from workflows.rollouts.spec import rollout_workflow_id

    pipeline = tests.workflows.test_pipeline.pipeline(tests.workflows.test_pipeline.stage("dev"))

    assert names.ROLLOUT_WORKFLOW_TYPES == WORKFLOW_TYPES
    assert names.INCIDENT_WORKFLOW_TYPE == WORKFLOW_TYPE
    assert EmergencyRollback.__name__ == names.EMERGENCY_ROLLBACK_WORKFLOW_TYPE
    assert names.rollout_workflow_id("a", "b") == rollout_workflow_id("a", "b")
    assert names.healer_workflow_id("a", "b") == healer_workflow_id("a", "b")
    assert names.monitor_schedule_id("a") == monitor_schedule_id("a")
    assert names.pipeline_workflow_id(pipeline.name) == pipeline.workflow_id


def test_console_logging_is_set_up_by_the_first_record_and_renders_it_once():
    done = audited(
        """
        import logging
        from starters.cli import console_logging_on_first_record
        root = logging.getLogger()
        with console_logging_on_first_record():
            pass
        left = (list(root.handlers), root.level)  # nothing logged: nothing left behind
        with console_logging_on_first_record():
            logging.getLogger("temporalio.client").debug("below INFO: dropped, sets nothing up")
            before = "structlog" in sys.modules
            logging.getLogger("temporalio.client").warning("retrying %s", "poll")
            logging.getLogger("deployflow").info("second")
        print(left == ([], logging.WARNING), before, "structlog" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True False True"
    lines = done.stderr.splitlines()
    assert len(lines) == 2
    assert "warning" in lines[0]
    assert "retrying poll" in lines[0]
    assert "[temporalio.client]" in lines[0]
    assert "second" in lines[1]
