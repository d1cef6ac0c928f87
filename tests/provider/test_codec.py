"""DynamicValue encoding: what Terraform sends must be read, what we send must be what Terraform reads."""

from __future__ import annotations

import msgpack
import pytest

from provider import codec
from provider._proto import tfplugin6_pb2 as pb
from reconciler.diagnostics import error

SCHED = ["object", {"slug": "string", "cron": "string", "interval": "number", "active": "bool"}]
TYPE = [
    "object",
    {"name": "string", "limit": "number", "tags": ["list", "string"], "schedules": ["list", SCHED]},
]


def test_unknown_is_written_as_ext0_and_read_back() -> None:
    raw = codec.pack({"name": codec.UNKNOWN})
    assert b"\xd4\x00\x00" in raw
    assert codec.unpack(raw) == {"name": codec.UNKNOWN}


@pytest.mark.parametrize("code", [0, 12, 99])
def test_any_extension_code_reads_as_unknown(code: int) -> None:
    # ext 12 = a refined unknown (e.g. "not null, prefix 'x'") from Terraform >= 1.6
    raw = msgpack.packb({"a": msgpack.ExtType(code, msgpack.packb({1: False}))})
    assert codec.unpack(raw)["a"] is codec.UNKNOWN


def test_objects_are_conformed_with_every_attribute_and_nulls() -> None:
    value = codec.decode(pb.DynamicValue(msgpack=codec.pack({"name": "p"})), TYPE)
    assert value == {"name": "p", "limit": None, "tags": None, "schedules": None}


def test_nested_lists_of_objects_keep_unknowns_inside() -> None:
    sent = {"name": "d", "limit": 3, "tags": ["a"], "schedules": [{"slug": "s", "cron": codec.UNKNOWN}]}
    back = codec.decode(codec.encode(sent, TYPE), TYPE)
    assert back["schedules"] == [{"slug": "s", "cron": codec.UNKNOWN, "interval": None, "active": None}]
    assert not codec.is_wholly_known(back)
    assert codec.is_wholly_known({**back, "schedules": []})


def test_numbers_sent_as_strings_and_whole_floats_become_ints() -> None:
    assert codec.conform("12345678901234567890", "number") == 12345678901234567890
    assert codec.conform(2.0, "number") == 2 and isinstance(codec.conform(2.0, "number"), int)
    assert codec.conform("1.5", "number") == 1.5


def test_json_form_is_read_as_a_fallback() -> None:
    value = codec.decode(pb.DynamicValue(json=b'{"name": "p", "limit": 2}'), TYPE)
    assert value["name"] == "p" and value["limit"] == 2


def test_null_object_and_empty_message() -> None:
    assert codec.decode(pb.DynamicValue(msgpack=codec.pack(None)), TYPE) is None
    assert codec.decode(pb.DynamicValue(), TYPE) is None


def test_garbage_is_a_decode_error_not_a_crash() -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode(pb.DynamicValue(msgpack=b"\xc1"), TYPE)
    with pytest.raises(codec.DecodeError):
        codec.decode(pb.DynamicValue(msgpack=codec.pack({"name": "x", "tags": "notalist"})), TYPE)


def test_diagnostic_paths_name_attributes_and_list_indexes() -> None:
    d = codec.diagnostic(error("bad cron", "x", path=("schedules", 1, "cron")))
    assert d.severity == pb.Diagnostic.ERROR
    assert codec.path_of(d.attribute) == ("schedules", 1, "cron")
    assert d.attribute.steps[1].WhichOneof("selector") == "element_key_int"
