"""prefect.yaml as Prefect reads it (SPEC §2 "prefect.yaml fidelity", issue 11).

Each case reads one of the real-world shapes in tests/config/prefect_yaml/ unchanged, as the project's
prefect.yaml, and checks what wp registers or the exact diagnostic it gives at the line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from reconciler.config.load import LoadedConfig, load_project
from reconciler.diagnostics import Diagnostic, Severity
from tests.config.conftest import Write

EXAMPLES = Path(__file__).parent / "prefect_yaml"
WP_YAML = """
project: p
work_pools:
  - {name: local, type: process}
  - {name: docker-pool, type: docker}
"""


def example(write: Write, name: str, wp_yaml: str = WP_YAML) -> Path:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    root = write({"wp.yaml": wp_yaml})
    (root / "prefect.yaml").write_text(text, encoding="utf-8")  # unchanged, not dedented
    shutil.copytree(EXAMPLES / "project", root, dirs_exist_ok=True)  # pipelines/daily.py
    return root


def errors(loaded: LoadedConfig) -> list[Diagnostic]:
    return [d for d in loaded.diagnostics if d.severity is Severity.ERROR]


def placed(diagnostics: list[Diagnostic]) -> list[tuple[str, str]]:
    return [(d.location, d.summary) for d in diagnostics]


# --- 1. `schedule: {}` is "no schedule" ---------------------------------------------------------------------


def test_empty_schedule_is_no_schedule_also_next_to_schedules(write: Write) -> None:
    loaded = load_project(example(write, "generated_empty_schedule.yaml"), {})
    assert errors(loaded) == []
    assert loaded.desired is not None
    by_name = {d.name: d for d in loaded.desired.deployments}
    assert by_name["daily"].schedules == ()
    assert by_name["never"].schedules == ()
    [hourly] = by_name["hourly"].schedules
    assert (hourly.cron, hourly.timezone) == ("0 * * * *", "UTC")


def test_a_real_schedule_next_to_schedules_is_still_an_error(write: Write) -> None:
    prefect = """
    deployments:
      - name: both
        entrypoint: flows/etl.py:etl
        work_pool: {name: local}
        schedule: {cron: "0 1 * * *"}
        schedules: []
    """
    loaded = load_project(write({"wp.yaml": WP_YAML, "prefect.yaml": prefect}), {})
    assert placed(errors(loaded)) == [("prefect.yaml:5:5", "both 'schedule' and 'schedules' are set")]


# --- 2. values only `prefect deploy` can resolve ----------------------------------------------------------


def test_build_step_outputs_are_errors_at_their_lines(write: Write) -> None:
    loaded = load_project(example(write, "docker_build_outputs.yaml"), {})
    assert loaded.desired is None
    found = errors(loaded)
    assert placed(found) == [
        (
            "prefect.yaml:28:12",
            "'{{ build-image.tag }}' is an output of build step 'build-image', which wp does not run",
        ),
        (
            "prefect.yaml:33:14",
            "'{{ build-image.image }}' is an output of build step 'build-image', which wp does not run",
        ),
    ]
    assert [d.field_path for d in found] == [
        "deployments[0].version",
        "deployments[0].work_pool.job_variables.image",
    ]
    assert "version: ${VERSION}" in found[0].detail
    assert "image: ${IMAGE}" in found[1].detail and "literally" in found[1].detail


def test_block_and_variable_references_are_errors_everywhere(write: Write) -> None:
    loaded = load_project(example(write, "blocks_and_variables.yaml"), {})
    assert loaded.desired is None
    assert placed(errors(loaded)) == [
        (
            "prefect.yaml:9:19",
            "'{{ prefect.blocks.secret.github-token }}' is a Prefect block, which wp cannot read",
        ),
        (
            "prefect.yaml:18:19",
            "'{{ prefect.variables.full_refresh }}' is a Prefect variable, which wp cannot read",
        ),
        ("prefect.yaml:20:5", "'{{ prefect.variables.team }}' is a Prefect variable, which wp cannot read"),
        (
            "prefect.yaml:25:24",
            "'{{ prefect.blocks.secret.warehouse-url }}' is a Prefect block, which wp cannot read",
        ),
    ]
    # the reference between pull steps is fine: the worker resolves it
    assert not any("clone.directory" in d.summary for d in loaded.diagnostics)
    env_error = errors(loaded)[3]
    assert "WAREHOUSE_URL: ${WAREHOUSE_URL}" in env_error.detail


def test_templated_tags_are_errors_as_a_string_and_in_a_list(write: Write) -> None:
    loaded = load_project(example(write, "templated_tags.yaml"), {})
    assert loaded.desired is None
    message = "'{{ get-tags.stdout }}' is an output of build step 'get-tags', which wp does not run"
    assert placed(errors(loaded)) == [("prefect.yaml:9:9", message), ("prefect.yaml:13:10", message)]


def test_an_unknown_placeholder_is_an_error_not_literal_text(write: Write) -> None:
    prefect = """
    deployments:
      - name: x
        entrypoint: flows/etl.py:etl
        work_pool: {name: local}
        parameters: {target: "{{ run-tests.stdout }}"}
    """
    loaded = load_project(write({"wp.yaml": WP_YAML, "prefect.yaml": prefect}), {})
    [problem] = errors(loaded)
    assert problem.summary == "'{{ run-tests.stdout }}' refers to no step this deployment runs"
    assert problem.location == "prefect.yaml:5:26"


# --- 3. pull steps are checked at validate time -----------------------------------------------------------


def test_a_pull_step_wp_cannot_run_is_an_error_listing_the_ones_it_runs(write: Write) -> None:
    loaded = load_project(example(write, "s3_pull.yaml"), {})
    assert loaded.desired is None
    [problem] = [d for d in errors(loaded) if "pull" in d.summary]
    assert problem.summary == "pull step 'prefect_aws.deployments.steps.pull_from_s3' is not one wp runs"
    assert problem.location == "prefect.yaml:10:3"
    assert "git_clone, pip_install_requirements, run_shell_script, set_working_directory" in problem.detail


def test_supported_pull_step_spellings_pass(write: Write) -> None:
    prefect = """
    deployments:
      - name: x
        entrypoint: flows/etl.py:etl
        work_pool: {name: local}
        pull:
          - prefect.projects.steps.git_clone_project: {repository: "https://git.example.org/r.git"}
          - set_working_directory: {directory: r}
          - prefect.deployments.steps.run_shell_script: {script: "echo hi"}
    """
    loaded = load_project(write({"wp.yaml": WP_YAML, "prefect.yaml": prefect}), {})
    assert errors(loaded) == []


def test_a_pull_step_in_wp_yaml_is_checked_too(write: Write) -> None:
    wp_yaml = (
        WP_YAML
        + """
deployments:
  - name: x
    entrypoint: flows/etl.py:etl
    work_pool: {name: local}
    pull:
      - git_clone: {repository: r}
      - prefect.deployments.steps.checkout: {}
"""
    )
    loaded = load_project(write({"wp.yaml": wp_yaml}), {})
    assert placed(errors(loaded)) == [
        ("wp.yaml:12:9", "pull step 'prefect.deployments.steps.checkout' is not one wp runs")
    ]


def test_a_pull_step_with_two_names_is_an_error(write: Write) -> None:
    wp_yaml = (
        WP_YAML
        + """
deployments:
  - name: x
    entrypoint: flows/etl.py:etl
    work_pool: {name: local}
    pull: [{git_clone: {repository: r}, set_working_directory: {directory: r}}]
"""
    )
    loaded = load_project(write({"wp.yaml": wp_yaml}), {})
    [problem] = errors(loaded)
    assert problem.summary == "pull step 1 must be a mapping with one key, the step's name"
    assert problem.location == "wp.yaml:10:12"


# --- 4. `{{ $VAR }}` in pull steps is left for the worker ---------------------------------------------------


def test_env_placeholders_in_pull_are_left_for_the_worker(write: Write) -> None:
    loaded = load_project(example(write, "env_in_pull.yaml"), {"REGION": "eu"})
    assert errors(loaded) == []
    assert loaded.desired is not None
    [dep] = loaded.desired.deployments
    clone = dep.pull_steps[0]["prefect.deployments.steps.git_clone"]
    assert clone["branch"] == "{{ $GIT_BRANCH }}" and clone["access_token"] == "{{ $GIT_TOKEN }}"
    assert (
        dep.pull_steps[1]["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $HOME }}/etl"
    )
    # outside pull steps the value is still taken from the plan machine's environment
    assert dep.job_variables == {"env": {"REGION": "eu"}}


# --- 5, 6, 9: the flow Prefect registers, module-path entrypoints -----------------------------------------


def test_module_entrypoints_and_flow_names_from_constants(write: Write) -> None:
    loaded = load_project(example(write, "module_entrypoints.yaml"), {})
    assert errors(loaded) == [], [d.format() for d in loaded.diagnostics]
    assert loaded.desired is not None
    flows = {d.name: (d.flow, d.entrypoint) for d in loaded.desired.deployments}
    assert flows == {
        "by-module": ("nightly-etl", "pipelines.daily:nightly"),  # @flow(name=FLOW_NAME)
        "by-dotted-path": ("data-report", "pipelines.daily.report"),  # @flow(name=f"{TEAM}-report")
        "dynamic": ("dynamic", "pipelines/daily.py:dynamic"),
    }
    assert "pipelines/daily.py" in loaded.files
    warnings = [
        (d.location, d.summary, d.detail) for d in loaded.diagnostics if d.severity is Severity.WARNING
    ]
    assert warnings == [
        (
            "prefect.yaml:7:3",
            "'flow_name: nightly' is ignored: Prefect registers the flow as 'nightly-etl'",
            "the flow's name comes from @flow(name=...) in pipelines.daily:nightly; remove flow_name",
        ),
        (
            "prefect.yaml:20:15",
            "cannot read the flow name of 'pipelines/daily.py:dynamic' statically "
            "(@flow(name=name_from_settings()))",
            "wp uses the function name 'dynamic' for now; set `flow:` on the deployment to the name the flow "
            "registers with, or make name= a string literal or a module-level string constant",
        ),
    ]


def test_flow_name_equal_to_the_real_name_is_quiet_and_flow_wins(write: Write) -> None:
    prefect = """
    deployments:
      - {name: a, entrypoint: flows/etl.py:etl, flow_name: etl-flow, work_pool: {name: local}}
    """
    loaded = load_project(write({"wp.yaml": WP_YAML, "prefect.yaml": prefect}), {})
    assert loaded.diagnostics == []
    assert loaded.desired is not None and loaded.desired.deployments[0].flow == "etl-flow"


def test_a_module_entrypoint_that_is_not_in_the_project_is_a_warning(write: Write) -> None:
    prefect = """
    deployments:
      - {name: a, entrypoint: "company_flows.etl:run", work_pool: {name: local}}
    """
    loaded = load_project(write({"wp.yaml": WP_YAML, "prefect.yaml": prefect}), {})
    [warning] = loaded.diagnostics
    assert (warning.severity, warning.location) == (Severity.WARNING, "prefect.yaml:2:27")
    assert warning.summary == "module 'company_flows.etl' is not in the project directory"
    assert loaded.desired is not None and loaded.desired.deployments[0].flow == "run"


def test_a_module_entrypoint_naming_a_missing_function(write: Write) -> None:
    prefect = """
    deployments:
      - {name: a, entrypoint: "pipelines.daily:nightlly", work_pool: {name: local}}
    """
    root = example(write, "module_entrypoints.yaml")
    (root / "prefect.yaml").write_text(prefect)
    [problem] = errors(load_project(root, {}))
    assert problem.summary == "'pipelines/daily.py' defines no function 'nightlly'"
    assert problem.detail.startswith("did you mean 'nightly'?")


# --- 10: parameters against the flow's signature ----------------------------------------------------------


def test_parameters_are_checked_against_the_signature(write: Write) -> None:
    loaded = load_project(example(write, "wrong_parameters.yaml"), {})
    assert loaded.desired is None
    assert [(d.location, d.summary, d.detail) for d in errors(loaded)] == [
        (
            "prefect.yaml:5:5",
            "flow function 'nightly' has no parameter 'dya'",
            "did you mean 'day'? its parameters: day, retries, dry_run",
        ),
        (
            "prefect.yaml:6:14",
            "parameter 'retries' of 'nightly' is annotated int, got str '3'",
            "give a value of type int here",
        ),
        (
            "prefect.yaml:10:5",
            "runs of this schedule lack the required parameter(s) day of 'nightly'",
            "set them under the deployment's parameters or this schedule's; its parameters: day, retries, dry_run",
        ),
    ]
    [warning] = [d for d in loaded.diagnostics if d.severity is Severity.WARNING]
    assert warning.location == "prefect.yaml:14:9"
    assert warning.summary == "'nightly' requires parameter(s) day, which the deployment does not set"


def test_steps_written_as_one_mapping_are_a_one_step_list(write: Write) -> None:
    prefect = """
    pull:
      prefect.deployments.steps.set_working_directory: {directory: /opt/etl}
    deployments:
      - name: a
        entrypoint: flows/etl.py:etl
        work_pool: {name: local}
      - name: b
        entrypoint: flows/etl.py:etl
        work_pool: {name: local}
        pull:
          prefect_aws.deployments.steps.pull_from_s3: {bucket: b}
    """
    loaded = load_project(write({"wp.yaml": WP_YAML, "prefect.yaml": prefect}), {})
    assert placed(errors(loaded)) == [
        ("prefect.yaml:11:7", "pull step 'prefect_aws.deployments.steps.pull_from_s3' is not one wp runs")
    ]
    clean = prefect.split("      - name: b")[0]
    loaded = load_project(write({"wp.yaml": WP_YAML, "prefect.yaml": clean}), {})
    assert loaded.desired is not None
    assert loaded.desired.deployments[0].pull_steps == (
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/etl"}},
    )


def test_a_build_output_in_a_pull_step_says_all_three_ways_to_give_it(write: Write) -> None:
    prefect = """
    build:
      - prefect.deployments.steps.run_shell_script: {id: get-latest-tag, script: git describe --tags}
    deployments:
      - name: a
        entrypoint: flows/etl.py:etl
        work_pool: {name: local}
        pull:
          - prefect.deployments.steps.git_clone:
              repository: https://git.example.org/etl.git
              branch: "{{ get-latest-tag.stdout }}"
    """
    [problem] = errors(load_project(write({"wp.yaml": WP_YAML, "prefect.yaml": prefect}), {}))
    assert problem.location == "prefect.yaml:10:19"
    assert problem.summary == (
        "'{{ get-latest-tag.stdout }}' is an output of build step 'get-latest-tag', which wp does not run"
    )
    assert problem.detail == (
        "`prefect deploy` fills it when it runs the step; wp builds and pushes nothing (build in CI): give the "
        "value literally (branch: ...), from the environment of `wp plan` (branch: ${BRANCH}), or from the "
        "worker's environment when the step runs (branch: '{{ $BRANCH }}')"
    )


def test_templates_in_keys_wp_ignores_and_in_an_unused_default_pull_are_not_errors(write: Write) -> None:
    prefect = """
    pull:
      - prefect.deployments.steps.git_clone:
          repository: https://git.example.org/etl.git
          access_token: "{{ prefect.blocks.secret.token }}"
    deployments:
      - name: a
        entrypoint: flows/etl.py:etl
        work_pool: {name: local}
        pull: [{prefect.deployments.steps.set_working_directory: {directory: /opt/etl}}]
        triggers:
          - {enabled: true, match: {prefect.resource.id: "{{ event.resource.id }}"}}
    """
    loaded = load_project(write({"wp.yaml": WP_YAML, "prefect.yaml": prefect}), {})
    assert errors(loaded) == []
    assert [d.summary for d in loaded.diagnostics] == ["prefect.yaml: 'triggers' is ignored"]


# --- 12. where the code is: the pull steps `prefect deploy` records when none are given -------------------


def test_a_deployment_without_pull_steps_gets_the_ones_prefect_deploy_records(write: Write) -> None:
    prefect = """
    deployments:
      - name: local-code
        entrypoint: flows/etl.py:etl
        work_pool: {name: local}
      - name: in-an-image
        entrypoint: flows/etl.py:etl
        work_pool: {name: docker-pool, job_variables: {image: "registry.example.org/etl:1.2"}}
      - name: none
        entrypoint: flows/etl.py:etl
        work_pool: {name: local}
        pull: []
    """
    root = write({"wp.yaml": WP_YAML, "prefect.yaml": prefect})
    loaded = load_project(root, {})
    assert errors(loaded) == []
    assert loaded.desired is not None
    steps = {d.name: d.pull_steps for d in loaded.desired.deployments}
    assert steps == {
        "local-code": (
            {"prefect.deployments.steps.set_working_directory": {"directory": str(root.resolve())}},
        ),
        "in-an-image": ({"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect"}},),
        "none": (),
    }
    [warning] = loaded.diagnostics
    assert (warning.location, warning.summary) == (
        "prefect.yaml:5:5",
        "deployment 'in-an-image' runs in its image from /opt/prefect",
    )
    assert "add a set_working_directory pull step" in warning.detail


def test_a_docker_build_step_means_the_code_is_in_the_image_under_the_project_name(write: Write) -> None:
    root = example(write, "docker_build_outputs.yaml")
    text = (root / "prefect.yaml").read_text()
    text = text.replace(
        "pull:\n- prefect.deployments.steps.set_working_directory:\n    directory: /opt/prefect/etl\n", ""
    )
    text = text.replace("  version: '{{ build-image.tag }}'\n", "").replace(
        "'{{ build-image.image }}'", "etl:1"
    )
    (root / "prefect.yaml").write_text(text)
    loaded = load_project(root, {})
    assert loaded.desired is not None, [d.format() for d in loaded.diagnostics]
    assert loaded.desired.deployments[0].pull_steps == (
        {"prefect.deployments.steps.set_working_directory": {"directory": f"/opt/prefect/{root.name}"}},
    )


def test_a_deployment_s_own_build_steps_replace_the_file_s(write: Write) -> None:
    prefect = """
    build:
      - prefect_docker.deployments.steps.build_docker_image: {id: build-image, image_name: x}
    deployments:
      - name: own-build
        entrypoint: flows/etl.py:etl
        work_pool: {name: local}
        build:
          - prefect.deployments.steps.run_shell_script: {id: sha, script: git rev-parse HEAD}
        version: "{{ build-image.tag }}"
    """
    root = write({"wp.yaml": WP_YAML, "prefect.yaml": prefect})
    [problem] = errors(load_project(root, {}))
    # Prefect runs only the deployment's own build steps: build-image is not one of them
    assert problem.summary == "'{{ build-image.tag }}' refers to no step this deployment runs"
