"""`wp validate` reports every mistake of a config in one run, each with a fix a user can act on."""

from __future__ import annotations

from wp_cli import ProjectWriter, Wp

ELEVEN_MISTAKES = """\
project: demo
work_pools:
  - name: p
    type: process
    concurrency_limit: -1
    colour: red
    queues:
      - {name: urgent, priority: 0}
deployments:
  - name: d
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: p, work_queue_name: urgent, job_variables: {command: 5, bogus: 1}}
    schedules:
      - {cron: "61 * * * *"}
      - {cron: "0 * * * *", timezone: Europe/Berln}
    tagz: [x]
  - name: e
    entrypoint: flows/hello.py:say_hello
    work_pool: {name: nowhere}
    schedules:
      - {interval: "soon"}
"""


def test_every_error_is_reported_in_one_run(wp: Wp, project: ProjectWriter) -> None:
    result = wp("validate", project("broken", ELEVEN_MISTAKES))
    assert result.code == 1
    err = result.stderr
    for expected in (
        "wrong value for 'concurrency_limit'",
        "unknown field 'colour'",
        "wrong value for 'priority'",
        "job variable 'command'",
        "unknown job variable 'bogus'",
        "'61 * * * *'",
        "unknown timezone 'Europe/Berln'",
        "unknown field 'tagz'",
        "'soon' is not a duration",
        # a later check (the pool's existence in the store) runs although earlier ones failed
        "uses work pool 'nowhere', which is neither declared nor exists in the store",
    ):
        assert expected in err, f"{expected!r} missing from:\n{err}"
    # the queue whose priority is wrong is still declared: no second, false error about it
    assert "declares no queue 'urgent'" not in err
    assert "10 errors in the configuration." in err


def test_a_cron_field_out_of_range_is_named(wp: Wp, project: ProjectWriter) -> None:
    config = ELEVEN_MISTAKES.split("work_pools:")[0] + (
        "work_pools: [{name: p, type: process}]\n"
        "deployments:\n"
        "  - name: d\n"
        "    entrypoint: flows/hello.py:say_hello\n"
        "    work_pool: {name: p}\n"
        "    schedules:\n"
        '      - {cron: "61 * * * *"}\n'
        '      - {cron: "0 25 * * *"}\n'
        '      - {cron: "0 0 * *"}\n'
    )
    err = wp("validate", project("cron", config)).stderr
    assert "minute (the 1st field) is 61, out of range 0-59" in err
    assert "hour (the 2nd field) is 25, out of range 0-23" in err
    assert "write five fields: minute hour day month weekday (got 4)" in err  # there that hint is right
    assert err.count("write five fields") == 1


def test_a_misspelt_timezone_gets_a_did_you_mean(wp: Wp, project: ProjectWriter) -> None:
    err = wp("validate", project("tz", ELEVEN_MISTAKES)).stderr
    assert "did you mean 'Europe/Berlin'?" in err


def test_a_valid_config_counts_in_words(wp: Wp, project: ProjectWriter) -> None:
    config = (
        "project: demo\nwork_pools: [{name: p, type: process}]\ndeployments:\n"
        "  - {name: d, entrypoint: flows/hello.py:say_hello, work_pool: {name: p}}\n"
    )
    out = wp("validate", project("ok", config)).stdout
    assert "1 work pool, 0 queues, 1 deployment in 2 files." in " ".join(out.split())
