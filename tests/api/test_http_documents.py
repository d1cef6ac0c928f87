"""The pools an HttpStore serves as the server's JSON (what `wp work-pool ls/inspect/create` show through a
server, without building models) are exactly the models' dumps, and a pool created from a document is the pool
the model would have created; and the request encoding that avoids pydantic gives pydantic's values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import pytest
from pydantic_core import to_jsonable_python

from reconciler.engine.job_templates import default_base_job_template
from reconciler.model import BaseJobTemplate, WorkPool
from reconciler.store.client import HttpStore
from reconciler.store.http_session import jsonable

SECRET_TEMPLATE = BaseJobTemplate(
    job_configuration={"env": "{{ env }}", "api_token": "abc", "ratio": 1.5, "n": [1, {"PASSWORD": "s"}]},
    variables={
        "type": "object",
        "properties": {"env": {"type": "object", "default": {"MY_SECRET": "v", "PLAIN": "p"}}},
    },
)


def _pools() -> list[WorkPool]:
    return [
        WorkPool(name="plain", base_job_template=default_base_job_template("process")),
        WorkPool(
            name="k8s ünï",
            type="kubernetes",
            description="d",
            paused=True,
            concurrency_limit=0,
            base_job_template=default_base_job_template("kubernetes"),
        ),
        WorkPool(name="secrets", concurrency_limit=7, base_job_template=SECRET_TEMPLATE),
    ]


def test_pool_documents_are_the_models_dumps(http_store: HttpStore) -> None:
    for pool in _pools():
        http_store.create_work_pool(pool)
    listed = http_store.list_work_pools()
    documents = http_store.work_pool_documents()
    assert documents == [p.model_dump(mode="json") for p in listed]
    assert [json.dumps(d) for d in documents] == [json.dumps(p.model_dump(mode="json")) for p in listed]
    for pool in listed:
        document = http_store.work_pool_document(pool.name)
        assert json.dumps(document) == json.dumps(http_store.get_work_pool(pool.name).model_dump(mode="json"))
    assert documents[2]["base_job_template"]["job_configuration"]["api_token"] != "abc"  # sealed as before


def test_a_pool_created_from_its_document_is_the_pool_the_model_creates(http_store: HttpStore) -> None:
    for pool in _pools():
        created = http_store.create_work_pool_document(pool.model_dump(mode="json"))
        again = http_store.get_work_pool(pool.name)
        assert created == again.model_dump(mode="json")
        assert again.model_copy(update={"base_job_template": None}) == pool.model_copy(
            update={"base_job_template": None}
        )
    with pytest.raises(Exception, match="already exists"):
        http_store.create_work_pool_document(_pools()[0].model_dump(mode="json"))
    replaced = http_store.create_work_pool_document(
        {**_pools()[0].model_dump(mode="json"), "description": "new"}, overwrite=True
    )
    assert replaced["description"] == "new"


class Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "text ✓",
        0,
        -3,
        2**70,
        1.5,
        float("inf"),
        True,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 600),
        datetime(2026, 1, 2, tzinfo=timezone(timedelta(0))),
        datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 1, 2, tzinfo=timezone(timedelta(seconds=-3661))),
        datetime.now(UTC),
        ["a", 1, None, (2, 3), {"x": datetime(2026, 1, 1, tzinfo=UTC)}],
        {"a": {"b": [1.0, "c"]}, "when": datetime(2026, 5, 1, tzinfo=UTC)},
        {1: "non-string key"},
        (1, "tuple"),
        {"a", "set"} - {"set"},
        Colour.RED,
        timedelta(seconds=90),
    ],
)
def test_request_values_are_encoded_as_pydantic_encodes_them(value: Any) -> None:
    ours, theirs = jsonable(value), to_jsonable_python(value)
    assert json.dumps(ours) == json.dumps(theirs)
    assert type(ours) is type(theirs)
