"""EventMapper: which column becomes which field (names, field_map, defaults, metadata, row_mapper, ids)."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest

from enso_provider.events import (
    DUPLICATE_EVENT_ID,
    INVALID_EVENT_ID,
    INVALID_METADATA,
    INVALID_ROW,
    INVALID_TIMESTAMP,
    INVALID_VALUE,
    MISSING_CUSTOMER_ENTITY_ID,
    MISSING_METRIC,
    Event,
    EventMapper,
    Rejection,
    decode_event,
    dumps,
)

TS = "2023-11-07T05:31:56Z"
GENERATED_ID = re.compile(r"ev_[0-9a-f]{32}(-[0-9]+)?")


def row(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"CustomerEntityId": "cust_1", "metric": "api_calls", "value": 3, "timestamp": TS}
    base.update(extra)
    return base


def event(item: Event | Rejection) -> dict[str, Any]:
    assert isinstance(item, Event), item
    data = decode_event(item.data)
    assert data["eventId"] == item.event_id
    return data


def rejection(item: Event | Rejection, code: str) -> Rejection:
    assert isinstance(item, Rejection), item
    assert item.code == code, item
    return item


# ---------------------------------------------------------------- names


def test_exact_wire_names_map_and_event_is_complete() -> None:
    data = event(EventMapper().map_one(row()))
    assert data == {
        "CustomerEntityId": "cust_1",
        "metric": "api_calls",
        "value": 3,
        "timestamp": TS,
        "metadata": {},
        "eventId": data["eventId"],
    }
    assert GENERATED_ID.fullmatch(data["eventId"])


def test_wire_order_is_fixed_and_event_id_last() -> None:
    item = EventMapper(job_id="j").map_one(row())
    assert isinstance(item, Event)
    keys = re.findall(rb'"(\w+)":', item.data)
    assert keys == [b"CustomerEntityId", b"JobId", b"metadata", b"metric", b"timestamp", b"value", b"eventId"]
    with_bag = EventMapper(metadata_columns=["region"]).map_one(row(region="eu"))
    assert isinstance(with_bag, Event)
    assert re.findall(rb'"(\w+)":', with_bag.data) == [
        b"CustomerEntityId",
        b"metadata",
        b"region",
        b"metric",
        b"timestamp",
        b"value",
        b"eventId",
    ]


def test_names_match_case_insensitively() -> None:
    data = event(
        EventMapper().map_one(
            {"CUSTOMERENTITYID": "c", "Metric": "m", "VALUE": 1.5, "TimeStamp": TS, "JOBID": "j"}
        )
    )
    assert (data["CustomerEntityId"], data["metric"], data["value"], data["JobId"]) == ("c", "m", 1.5, "j")


def test_names_match_in_snake_case() -> None:
    data = event(
        EventMapper().map_one(
            {
                "customer_entity_id": "c",
                "metric": "m",
                "value": 1,
                "timestamp": TS,
                "job_id": "j",
                "event_id": "own-1",
                "metadata": {"a": 1},
            }
        )
    )
    assert data["CustomerEntityId"] == "c"
    assert data["JobId"] == "j"
    assert data["eventId"] == "own-1"
    assert data["metadata"] == {"a": 1}


def test_job_id_spelled_jobId_is_read_and_sent_as_JobId() -> None:
    item = EventMapper().map_one(row(jobId="job_7"))
    data = event(item)
    assert data["JobId"] == "job_7"
    assert "jobId" not in data


@pytest.mark.parametrize("name", ["customer_id", "customer", "account_id", "ts", "event_time", "amount"])
def test_unlisted_names_are_not_guessed(name: str) -> None:
    mapper = EventMapper(metadata_columns="*")
    r = {"metric": "m", "value": 1, "timestamp": TS, name: "x"}
    if name in ("ts", "event_time"):
        r = {"CustomerEntityId": "c", "metric": "m", "value": 1, name: TS}
        rejection(mapper.map_one(r), INVALID_TIMESTAMP)
    elif name == "amount":
        r = {"CustomerEntityId": "c", "metric": "m", "timestamp": TS, name: 1}
        rejection(mapper.map_one(r), INVALID_VALUE)
    else:
        rejection(mapper.map_one(r), MISSING_CUSTOMER_ENTITY_ID)


def test_two_columns_matching_one_field_prefer_the_exact_wire_name() -> None:
    data = event(EventMapper().map_one({**row(), "Value": 99, "value": 5}))
    assert data["value"] == 5


def test_ambiguous_columns_reject_mapping_rows_and_refuse_tuple_columns() -> None:
    mapper = EventMapper()
    item = rejection(
        mapper.map_one({"customer_entity_id": "a", "CUSTOMERENTITYID": "b", "metric": "m", "value": 1}),
        INVALID_ROW,
    )
    assert "field_map" in item.error
    with pytest.raises(ValueError, match="CustomerEntityId"):
        mapper.map([("a", "b")], columns=["customer_entity_id", "customerEntityID"])


# ---------------------------------------------------------------- field_map


def test_field_map_names_source_columns_and_wins_over_matching_names() -> None:
    mapper = EventMapper(
        field_map={"customer_entity_id": "account", "value": "Amount", "timestamp": "hour"},
        metadata_columns="*",
    )
    data = event(mapper.map_one({"account": "acc", "amount": 7, "value": 1, "metric": "m", "hour": TS}))
    assert data["CustomerEntityId"] == "acc"
    assert data["value"] == 7  # found case-insensitively, and it wins over the "value" column
    assert data["metadata"] == {"value": 1}  # the unmapped "value" column is just a column


def test_field_map_missing_column_in_mapping_row_is_a_missing_field() -> None:
    item = rejection(
        EventMapper(field_map={"CustomerEntityId": "account"}).map_one(row()), MISSING_CUSTOMER_ENTITY_ID
    )
    assert "'account' is not in the row" in item.error


def test_field_map_missing_column_in_tuple_columns_raises_at_once() -> None:
    mapper = EventMapper(field_map={"CustomerEntityId": "account"})
    with pytest.raises(ValueError, match="account"):
        mapper.map([], columns=["metric", "value"])


@pytest.mark.parametrize(
    "field_map",
    [
        {"customer": "x"},
        {"ts": "x"},
        {"value": ""},
        {"value": 3},
        {"value": "a", "Value": "b"},
    ],
)
def test_bad_field_map_raises(field_map: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="field_map"):
        EventMapper(field_map=field_map)


def test_field_map_event_id_and_event_id_column_conflict() -> None:
    with pytest.raises(ValueError, match="choose one"):
        EventMapper(field_map={"eventId": "id"}, event_id_column="id")


# ---------------------------------------------------------------- defaults


def test_defaults_fill_fields_no_column_maps() -> None:
    mapper = EventMapper(defaults={"metric": "api_calls", "value": 1, "timestamp": "2023-01-01"})
    data = event(mapper.map_one({"CustomerEntityId": "c"}))
    assert (data["metric"], data["value"], data["timestamp"]) == ("api_calls", 1, "2023-01-01T00:00:00Z")


def test_a_mapped_column_wins_over_a_default() -> None:
    data = event(EventMapper(defaults={"metric": "default_metric"}).map_one(row(metric="row_metric")))
    assert data["metric"] == "row_metric"


@pytest.mark.parametrize("missing", [None, float("nan"), "", "   "])
def test_a_default_fills_a_missing_column_value(missing: Any) -> None:
    mapper = EventMapper(defaults={"metric": "dflt", "value": 1, "timestamp": TS, "JobId": "jd"})
    data = event(mapper.map_one(row(metric=missing, value=missing, timestamp=missing, JobId=missing)))
    assert (data["metric"], data["value"], data["timestamp"], data["JobId"]) == ("dflt", 1, TS, "jd")


def test_defaults_metadata_fills_a_missing_metadata_object() -> None:
    mapper = EventMapper(defaults={"metadata": {"source": "dag"}}, metadata_columns=["region"])
    assert event(mapper.map_one(row(region="eu")))["metadata"] == {"source": "dag", "region": "eu"}
    assert event(mapper.map_one(row(region="eu", metadata={"x": 1})))["metadata"] == {"x": 1, "region": "eu"}


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ({"ts": 1}, "not an event field"),
        ({"value": "abc"}, "not a number"),
        ({"value": float("nan")}, "value"),
        ({"timestamp": "yesterday"}, "ISO 8601"),
        ({"timestamp": 1700000000}, "timestamp_unit"),
        ({"metric": "  "}, "blank"),
        ({"metric": True}, "boolean"),
        ({"eventId": "x"}, "eventId"),
        ({"metadata": [1]}, "mapping"),
        ({"metadata": {"a": object()}}, "JSON-safe"),
    ],
)
def test_bad_defaults_raise(defaults: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EventMapper(defaults=defaults)


def test_job_id_and_defaults_job_id_conflict() -> None:
    with pytest.raises(ValueError, match="choose one"):
        EventMapper(job_id="a", defaults={"jobId": "b"})


# ---------------------------------------------------------------- metadata


def test_metadata_columns_list_keys_as_written_found_case_insensitively() -> None:
    mapper = EventMapper(metadata_columns=["Region", "plan"])
    data = event(mapper.map_one(row(region="eu", plan="pro", other="x")))
    assert data["metadata"] == {"Region": "eu", "plan": "pro"}


def test_metadata_columns_absent_from_a_mapping_row_are_left_out() -> None:
    assert event(EventMapper(metadata_columns=["region", "plan"]).map_one(row(plan="pro")))["metadata"] == {
        "plan": "pro"
    }


def test_metadata_columns_absent_from_tuple_columns_raise() -> None:
    with pytest.raises(ValueError, match="region"):
        EventMapper(metadata_columns=["region"]).map([], columns=["CustomerEntityId", "metric"])


def test_metadata_star_takes_every_unmapped_column() -> None:
    mapper = EventMapper(metadata_columns="*", field_map={"value": "qty"})
    data = event(
        mapper.map_one({"CustomerEntityId": "c", "metric": "m", "qty": 2, "timestamp": TS, "a": 1, "b": None})
    )
    assert data["metadata"] == {"a": 1, "b": None}


def test_metadata_star_duplicate_tuple_column_names_raise() -> None:
    with pytest.raises(ValueError, match="twice"):
        EventMapper(metadata_columns="*").map([], columns=["CustomerEntityId", "x", "x"])


def test_metadata_columns_merge_with_a_mapped_object_and_win() -> None:
    mapper = EventMapper(metadata_columns=["region"])
    data = event(mapper.map_one(row(metadata={"region": "us", "tier": 1}, region="eu")))
    assert data["metadata"] == {"region": "eu", "tier": 1}


def test_metadata_object_from_json_text() -> None:
    mapper = EventMapper()
    assert event(mapper.map_one(row(metadata='{"b": 1, "a": [1, 2]}')))["metadata"] == {"a": [1, 2], "b": 1}
    assert event(mapper.map_one(row(metadata=b'{"a": 1}')))["metadata"] == {"a": 1}
    assert event(mapper.map_one(row(metadata="  ")))["metadata"] == {}


@pytest.mark.parametrize("bad", ["[1, 2]", "not json", 5, [1], True, {"a": object()}])
def test_metadata_that_is_not_an_object_is_rejected(bad: Any) -> None:
    item = rejection(EventMapper().map_one(row(metadata=bad)), INVALID_METADATA)
    assert item.field == "metadata"


def test_metadata_none_is_an_empty_object() -> None:
    assert event(EventMapper().map_one(row(metadata=None)))["metadata"] == {}


# ---------------------------------------------------------------- row_mapper


def test_row_mapper_output_is_mapped_like_a_row() -> None:
    seen: list[Any] = []

    def to_event(r: Any) -> dict[str, Any]:
        seen.append(r)
        return {"customer_entity_id": r["acct"], "value": r["n"] * 2, "region": r["r"]}

    mapper = EventMapper(
        row_mapper=to_event, defaults={"metric": "m", "timestamp": TS}, metadata_columns=["region"]
    )
    items = list(mapper.map([("a", 2, "eu")], columns=["acct", "n", "r"]))
    data = event(items[0])
    assert (data["CustomerEntityId"], data["value"], data["metadata"]) == ("a", 4, {"region": "eu"})
    assert seen == [{"acct": "a", "n": 2, "r": "eu"}]  # tuple rows arrive as dicts


def test_row_mapper_that_raises_rejects_the_row_and_carries_on() -> None:
    def boom(r: Any) -> dict[str, Any]:
        if r["value"] == 2:
            raise KeyError("no such thing")
        return dict(r)

    items = list(EventMapper(row_mapper=boom).map([row(value=1), row(value=2), row(value=3)]))
    assert [type(i) for i in items] == [Event, Rejection, Event]
    bad = rejection(items[1], INVALID_ROW)
    assert "KeyError" in bad.error
    assert "no such thing" in bad.error
    assert bad.row == row(value=2)


@pytest.mark.parametrize("out", [None, 5, ["a"]])
def test_row_mapper_returning_a_non_mapping_rejects(out: Any) -> None:
    item = rejection(EventMapper(row_mapper=lambda r: out).map_one(row()), INVALID_ROW)
    assert "not a mapping" in item.error


def test_row_mapper_must_be_callable() -> None:
    with pytest.raises(ValueError, match="callable"):
        EventMapper(row_mapper="nope")  # type: ignore[arg-type]


# ---------------------------------------------------------------- JobId


def test_job_id_is_a_constant_unless_the_row_maps_its_own() -> None:
    mapper = EventMapper(job_id="job_const")
    assert event(mapper.map_one(row()))["JobId"] == "job_const"
    assert event(mapper.map_one(row(job_id="job_row")))["JobId"] == "job_row"
    assert event(mapper.map_one(row(job_id=None)))["JobId"] == "job_const"


def test_no_job_id_sends_no_job_field() -> None:
    assert "JobId" not in event(EventMapper().map_one(row()))


def test_bad_job_id_in_a_row_is_rejected() -> None:
    rejection(EventMapper().map_one(row(JobId={"a": 1})), "invalid_job_id")


# ---------------------------------------------------------------- event ids from keys


def test_event_id_column_hashes_the_namespaced_key() -> None:
    one = EventMapper(event_id_column="order_id", namespace="dag.task")
    two = EventMapper(event_id_column="order_id", namespace="dag.task")
    other = EventMapper(event_id_column="order_id", namespace="other")
    a = one.map_one(row(order_id=1001, value=1))
    b = two.map_one(row(order_id="1001", value=2))  # same key, different content: same id
    c = other.map_one(row(order_id=1001, value=1))
    assert isinstance(a, Event)
    assert isinstance(b, Event)
    assert isinstance(c, Event)
    assert GENERATED_ID.fullmatch(a.event_id)
    assert "-" not in a.event_id[3:]
    assert a.event_id == b.event_id != c.event_id


def test_event_id_namespace_overrides_the_namespace_for_keys_only() -> None:
    monday = EventMapper(event_id_column="k", namespace="dag|task|monday", event_id_namespace="dag|task")
    tuesday = EventMapper(event_id_column="k", namespace="dag|task|tuesday", event_id_namespace="dag|task")
    plain = EventMapper(event_id_column="k", namespace="dag|task")
    a, b, c = (m.map_one(row(k="order-1")) for m in (monday, tuesday, plain))
    assert isinstance(a, Event)
    assert isinstance(b, Event)
    assert isinstance(c, Event)
    assert a.event_id == b.event_id == c.event_id
    # Content ids (no key) still use the namespace.
    x = EventMapper(namespace="a", event_id_namespace="k").map_one(row())
    y = EventMapper(namespace="b", event_id_namespace="k").map_one(row())
    assert isinstance(x, Event)
    assert isinstance(y, Event)
    assert x.event_id != y.event_id


def test_event_id_column_duplicate_key_rejects_the_later_row() -> None:
    mapper = EventMapper(event_id_column="order_id")
    items = list(mapper.map([row(order_id="k1"), row(order_id="k2"), row(order_id=" k1 ", value=9)]))
    assert [type(i) for i in items] == [Event, Event, Rejection]
    dup = rejection(items[2], DUPLICATE_EVENT_ID)
    assert dup.row_key == "k1"
    assert dup.event is not None
    assert dup.event["value"] == 9
    assert isinstance(items[0], Event)
    assert dup.event["eventId"] == items[0].event_id


def test_a_rejected_row_does_not_take_its_key() -> None:
    mapper = EventMapper(event_id_column="order_id")
    first = mapper.map_one(row(order_id="k1", value="bad"))
    second = mapper.map_one(row(order_id="k1", value=1))
    assert rejection(first, INVALID_VALUE).row_key == "k1"
    assert isinstance(second, Event)


@pytest.mark.parametrize("key", [None, "", float("nan"), True])
def test_event_id_column_without_a_usable_key_rejects(key: Any) -> None:
    item = rejection(EventMapper(event_id_column="order_id").map_one(row(order_id=key)), INVALID_EVENT_ID)
    assert item.row_key is None


def test_event_id_column_absent_from_a_mapping_row_rejects_and_from_columns_raises() -> None:
    mapper = EventMapper(event_id_column="order_id")
    assert "not in the row" in rejection(mapper.map_one(row()), INVALID_EVENT_ID).error
    with pytest.raises(ValueError, match="order_id"):
        mapper.map([], columns=["CustomerEntityId"])


def test_rejections_carry_the_row_key() -> None:
    item = rejection(
        EventMapper(event_id_column="Order_ID").map_one(row(order_id=77, metric=None)), MISSING_METRIC
    )
    assert item.row_key == "77"
    assert item.as_record()["rowKey"] == "77"


# ---------------------------------------------------------------- own event ids


def test_an_event_id_column_is_sent_as_is_and_its_duplicates_rejected() -> None:
    mapper = EventMapper()
    items = list(mapper.map([row(eventId=" abc "), row(eventId="abc", value=2), row(eventId=12)]))
    assert isinstance(items[0], Event)
    assert items[0].event_id == "abc"
    rejection(items[1], DUPLICATE_EVENT_ID)
    assert isinstance(items[2], Event)
    assert items[2].event_id == "12"


def test_a_missing_own_event_id_falls_back_to_the_content_id() -> None:
    items = list(EventMapper().map([row(event_id=None), row(event_id=float("nan"))]))
    ids = [i.event_id for i in items if isinstance(i, Event)]
    assert len(ids) == 2
    assert all(GENERATED_ID.fullmatch(i) for i in ids)
    assert ids[1] == ids[0] + "-2"


def test_an_own_event_id_is_json_escaped() -> None:
    item = EventMapper().map_one(row(eventId='a"b\\c'))
    assert event(item)["eventId"] == 'a"b\\c'


# ---------------------------------------------------------------- tuple rows, state


def test_tuple_rows_with_columns() -> None:
    mapper = EventMapper(job_id="j")
    columns = ["customer_entity_id", "metric", "value", "timestamp"]
    items = list(mapper.map([("c1", "m", 1.25, TS), ["c2", "m", 2, TS]], columns=columns))
    assert [event(i)["CustomerEntityId"] for i in items] == ["c1", "c2"]


@pytest.mark.parametrize("bad", [("c1", "m", 1), ("c1", "m", 1, TS, "extra"), "c1mT", 42, {"a": 1}])
def test_tuple_rows_of_the_wrong_shape_are_rejected(bad: Any) -> None:
    mapper = EventMapper()
    items = list(
        mapper.map([bad, ("c", "m", 1, TS)], columns=["CustomerEntityId", "metric", "value", "timestamp"])
    )
    rejection(items[0], INVALID_ROW)
    assert isinstance(items[1], Event)


@pytest.mark.parametrize("columns", ["abc", [1, 2], None])
def test_bad_columns_raise_or_mean_mapping_rows(columns: Any) -> None:
    if columns is None:
        rejection(EventMapper().map_one(("c", "m")), INVALID_ROW)
        return
    with pytest.raises(ValueError, match="columns"):
        EventMapper().map([], columns=columns)


def test_non_dict_mappings_are_rows_too() -> None:
    from types import MappingProxyType

    assert isinstance(EventMapper().map_one(MappingProxyType(row())), Event)


def test_index_continues_across_map_calls_and_counts_add_up() -> None:
    mapper = EventMapper()
    first = list(mapper.map([row(value=1), row(value="x")]))
    second = list(
        mapper.map([("c", "m", 1, TS)], columns=["CustomerEntityId", "metric", "value", "timestamp"])
    )
    third = list(mapper.map([row(value=2), 7]))
    assert [i.index for i in first + second + third] == [0, 1, 2, 3, 4]
    assert mapper.rows_seen == 5
    assert mapper.rejected == 2
    assert mapper.events_built == 3
    assert mapper.rejections_by_code == {INVALID_VALUE: 1, INVALID_ROW: 1}


def test_duplicate_occurrences_continue_across_map_calls() -> None:
    mapper = EventMapper()
    a = mapper.map_one(row())
    b = next(iter(mapper.map([row()])))
    assert isinstance(a, Event)
    assert isinstance(b, Event)
    assert b.event_id == a.event_id + "-2"


def test_map_validates_columns_before_iteration() -> None:
    mapper = EventMapper(field_map={"value": "qty"})
    with pytest.raises(ValueError, match="qty"):
        mapper.map(iter([]), columns=["value"])  # not lazily at the first next()
    assert mapper.rows_seen == 0


def test_sqlite_cursor_rows_end_to_end() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("create table usage (customer_entity_id text, metric text, value real, ts text, region text)")
    db.executemany(
        "insert into usage values (?, ?, ?, ?, ?)",
        [("c1", "api", 1.5, "2023-11-07 05:00:00", "eu"), ("c2", "api", None, "2023-11-07 06:00:00", "us")],
    )
    cursor = db.execute("select * from usage order by customer_entity_id")
    columns = [d[0] for d in cursor.description]
    mapper = EventMapper(field_map={"timestamp": "ts"}, metadata_columns=["region"], job_id="j")
    items = list(mapper.map(cursor.fetchmany(10), columns=columns))
    data = event(items[0])
    assert (data["timestamp"], data["metadata"], data["value"]) == (
        "2023-11-07T05:00:00Z",
        {"region": "eu"},
        1.5,
    )
    bad = rejection(items[1], INVALID_VALUE)
    assert bad.row == {
        "customer_entity_id": "c2",
        "metric": "api",
        "value": None,
        "ts": "2023-11-07 06:00:00",
        "region": "us",
    }


# ---------------------------------------------------------------- rejection records


def test_rejection_record_shape() -> None:
    item = rejection(EventMapper().map_one(row(value="lots")), INVALID_VALUE)
    record = item.as_record()
    assert set(record) >= {"index", "error", "code", "statusCode", "rowKey", "row", "event"}
    assert record["statusCode"] == 400
    assert record["row"] == row(value="lots")
    assert record["event"]["value"] == "lots"
    assert "'lots'" in record["error"]
    assert "value" in record["error"]


def test_rejection_error_is_truncated() -> None:
    item = rejection(EventMapper().map_one(row(value="x" * 10_000)), INVALID_VALUE)
    assert len(item.error) < 400


def test_rejection_is_frozen() -> None:
    item = rejection(EventMapper().map_one(row(value=None)), INVALID_VALUE)
    with pytest.raises(AttributeError):
        item.code = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "zone"),
        ({"timezone": ""}, "zone"),
        ({"timestamp_unit": "us"}, "timestamp_unit"),
        ({"max_event_bytes": 10}, "max_event_bytes"),
        ({"max_event_bytes": True}, "max_event_bytes"),
        ({"metadata_columns": "region"}, "metadata_columns"),
        ({"metadata_columns": ["a", "a"]}, "twice"),
        ({"metadata_columns": [""]}, "metadata_columns"),
        ({"event_id_column": ""}, "event_id_column"),
        ({"namespace": None}, "namespace"),
        ({"event_id_namespace": 5}, "event_id_namespace"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EventMapper(**kwargs)


def test_rejection_text_is_always_encodable() -> None:
    def boom(r: Any) -> Any:
        raise ValueError("bad \ud800 text")

    item = rejection(EventMapper(row_mapper=boom).map_one(row()), INVALID_ROW)
    dumps(item.as_record())
    key = rejection(EventMapper(event_id_column="k").map_one(row(k="\ud800", value=None)), INVALID_VALUE)
    assert key.row_key == "\\ud800"
    dumps(key.as_record())
