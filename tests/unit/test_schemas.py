"""The strict colander types of docs/API.md section 1."""

import json
from datetime import datetime

import colander
import pytest

from cinema_api.core import schemas
from cinema_api.core.body import MAX_JSON_DEPTH, MAX_JSON_VALUES, parse_json_object
from cinema_api.core.errors import BadRequest


def deserialize(node, value):
    return node.deserialize(value)


@pytest.mark.parametrize("value, expected", [(21, 21), ("21", 21), ("-3", -3), (0, 0), ("007", 7)])
def test_integer_accepts_json_integers_and_digit_strings(value, expected):
    assert deserialize(schemas.integer_node(name="n"), value) == expected


@pytest.mark.parametrize("value", [21.0, 21.5, 1e3, True, False, None, "21.0", "1e3", " 21", "+21", "", "٣", [], {}, "9" * 41])
def test_integer_rejects_everything_else(value):
    with pytest.raises(colander.Invalid) as info:
        deserialize(schemas.integer_node(name="n"), value)
    assert info.value.asdict() == {"n": "must be an integer number"}


def test_string_is_trimmed_before_its_length_is_checked():
    node = schemas.string_node(name="title", validator=schemas.LengthBounds(1, 5))
    assert deserialize(node, "  abcde  ") == "abcde"
    with pytest.raises(colander.Invalid, match="should not be empty"):
        deserialize(node, "   ")
    with pytest.raises(colander.Invalid, match="must be shorter than or equal to 5 characters"):
        deserialize(node, "abcdef")


@pytest.mark.parametrize("value", [42, 4.2, True, None, ["a"], {"a": 1}])
def test_string_requires_a_json_string(value):
    with pytest.raises(colander.Invalid, match="must be a string"):
        deserialize(schemas.string_node(name="title"), value)


def test_length_in_utf8_bytes():
    node = schemas.string_node(name="password", validator=schemas.LengthBounds(8, 72, unit="bytes"))
    assert deserialize(node, "é" * 36) == "é" * 36
    with pytest.raises(colander.Invalid, match="72 bytes"):
        deserialize(node, "é" * 37)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0B7E6F2A-1C3D-4E5F-8A9B-0C1D2E3F4A5B", "0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"),
        ("00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"),
        ("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
    ],
)
def test_uuid_any_version_either_case(value, expected):
    assert deserialize(schemas.uuid_node(name="id"), value) == expected


@pytest.mark.parametrize("value", ["0b7e6f2a1c3d4e5f8a9b0c1d2e3f4a5b", "{0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b}", "urn:uuid:0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b", "0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5", 42, "zzzzzzzz-1c3d-4e5f-8a9b-0c1d2e3f4a5b"])
def test_uuid_rejects_other_forms(value):
    with pytest.raises(colander.Invalid, match="must be a UUID"):
        deserialize(schemas.uuid_node(name="id"), value)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-12-23T20:00:00.000Z", datetime(2026, 12, 23, 20)),
        ("2026-12-23T22:00:00+02:00", datetime(2026, 12, 23, 20)),
        ("2026-12-23T20:00:00", datetime(2026, 12, 23, 20)),  # no offset means UTC
        ("2026-12-23T20:00Z", datetime(2026, 12, 23, 20)),
        ("2026-12-24T01:30:00+05:30", datetime(2026, 12, 23, 20)),
        ("2026-12-23", datetime(2026, 12, 23)),  # a date alone means 00:00Z
    ],
)
def test_dates_convert_to_naive_utc(value, expected):
    assert deserialize(schemas.datetime_node(name="date"), value) == expected


@pytest.mark.parametrize("value", ["2026-12-23 20:00:00", "23/12/2026", "2026-13-01", "2026-12-23T25:00:00Z", "tomorrow", 1766520000, "", "0001-01-01T00:00:00+01:00"])
def test_dates_reject_anything_else(value):
    with pytest.raises(colander.Invalid, match="must be a valid ISO 8601 date string"):
        deserialize(schemas.datetime_node(name="date"), value)


def test_format_datetime_has_milliseconds_and_z():
    assert schemas.format_datetime(datetime(2026, 12, 23, 20, 0, 0, 123456)) == "2026-12-23T20:00:00.123Z"


class FakeRequest:
    charset = "utf-8"

    def __init__(self, body):
        self.body = body


@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b'"text"', b"42", b"null", b"\xff\xfe", b'{"a": NaN}'])
def test_malformed_or_non_object_json_is_a_400_with_a_string_message(raw):
    with pytest.raises(BadRequest) as info:
        parse_json_object(FakeRequest(raw))
    assert isinstance(info.value.message, str)


def test_json_nesting_is_limited_to_64_levels():
    def nested(depth):
        value = 1
        for _ in range(depth - 1):
            value = {"a": value}
        return json.dumps({"a": value}).encode()

    assert parse_json_object(FakeRequest(nested(MAX_JSON_DEPTH - 1)))
    with pytest.raises(BadRequest, match="nested deeper than 64 levels"):
        parse_json_object(FakeRequest(nested(MAX_JSON_DEPTH + 1)))
    with pytest.raises(BadRequest, match="nested deeper than 64 levels"):
        parse_json_object(FakeRequest(b"[" * 5000 + b"]" * 5000))  # under the value cap


def test_empty_body_is_an_empty_object():
    assert parse_json_object(FakeRequest(b"")) == {}
    assert parse_json_object(FakeRequest(b"  \n")) == {}


def test_a_body_is_capped_at_ten_thousand_values_before_it_is_parsed():
    under = json.dumps({"a": list(range(MAX_JSON_VALUES - 2))}).encode()
    assert len(parse_json_object(FakeRequest(under))["a"]) == MAX_JSON_VALUES - 2
    for over in (json.dumps({"a": list(range(MAX_JSON_VALUES))}).encode(), b"[" * 100000 + b"]" * 100000):
        with pytest.raises(BadRequest, match="more than 10000 JSON values"):
            parse_json_object(FakeRequest(over))
    # commas and brackets inside strings are not values
    assert parse_json_object(FakeRequest(json.dumps({"a": ",[{" * 20000}).encode()))
