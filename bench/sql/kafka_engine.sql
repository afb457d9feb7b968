-- ClickHouse's Kafka table engine reading the benchmark topic into the
-- same tables vigil writes (events and event_subjects), for `vigil bench`.
-- Each message is read whole as one String (CSV with a tab delimiter, set
-- in the server's default profile; a tab cannot occur in JSON) and parsed
-- by the views: 18.16's JSONEachRow Kafka tables cannot compute time_ns
-- (nanoseconds from the RFC 3339 time). An insert through a view does not
-- fire event_subjects_mv in 18.16, so event_subjects has its own view.
-- 18.16 has no _partition/_offset virtual columns: kafka_partition and
-- kafka_offset stay 0. The views are attached to a Null table first, which
-- the Kafka table then replaces, so consumption starts with both attached.
-- {db}, {broker}, {topic}, {group} and {consumers} (one per core, at most one
-- per partition: the most the engine can use) are filled in by the bench.
CREATE TABLE {db}.kafka_raw (raw String) ENGINE = Null;
CREATE MATERIALIZED VIEW {db}.kafka_mv TO {db}.events AS
SELECT
    visitParamExtractString(raw, 'id') AS id,
    CAST(visitParamExtractString(raw, 'type') AS Enum8('session.created' = 1, 'login.failed' = 2, 'session.validated' = 3,
        'token.refreshed' = 4, 'token.refresh_failed' = 5, 'session.elevated' = 6,
        'session.logout' = 7, 'session.expired' = 8, 'session.revoked' = 9)) AS type,
    parseDateTimeBestEffort(visitParamExtractString(raw, 'time')) AS time,
    toInt64(toUInt32(parseDateTimeBestEffort(visitParamExtractString(raw, 'time')))) * 1000000000
      + toInt64(substring(concat(extract(visitParamExtractString(raw, 'time'), '\\.([0-9]+)'), '000000000'), 1, 9)) AS time_ns,
    visitParamExtractString(raw, 'source') AS source,
    visitParamExtractString(raw, 'tenant') AS tenant,
    visitParamExtractString(raw, 'user_id') AS user_id,
    visitParamExtractString(raw, 'session_id') AS session_id,
    if(visitParamHas(raw, 'family_id'), visitParamExtractString(raw, 'family_id'), visitParamExtractString(raw, 'session_id')) AS family_id,
    visitParamExtractString(raw, 'token_id') AS token_id,
    visitParamExtractString(raw, 'parent_token_id') AS parent_token_id,
    visitParamExtractString(raw, 'ip') AS ip,
    visitParamExtractString(raw, 'user_agent') AS user_agent,
    visitParamExtractString(raw, 'device_id') AS device_id,
    visitParamExtractString(raw, 'country') AS country,
    toUInt32(visitParamExtractUInt(raw, 'asn')) AS asn,
    CAST(visitParamExtractString(raw, 'outcome') AS Enum8('' = 0, 'success' = 1, 'failure' = 2)) AS outcome,
    visitParamExtractString(raw, 'reason') AS reason,
    CAST(visitParamExtractString(raw, 'actor') AS Enum8('' = 0, 'user' = 1, 'admin' = 2, 'system' = 3, 'vigil' = 4)) AS actor,
    if(visitParamHas(raw, 'latency_ms'), toNullable(visitParamExtractFloat(raw, 'latency_ms')), NULL) AS latency_ms,
    visitParamExtractString(raw, 'auth_method') AS auth_method,
    if(visitParamHas(raw, 'sample_rate'), visitParamExtractFloat(raw, 'sample_rate'), 1.) AS sample_rate,
    extractAll(visitParamExtractRaw(raw, 'attributes'), '"([^"]*)":') AS `attributes.key`,
    extractAll(visitParamExtractRaw(raw, 'attributes'), ':"([^"]*)"') AS `attributes.value`,
    toUInt32(0) AS kafka_partition,
    toInt64(0) AS kafka_offset,
    now() AS ingested_at
FROM {db}.kafka_raw;
CREATE MATERIALIZED VIEW {db}.kafka_mv_subjects TO {db}.event_subjects AS
SELECT
    CAST(s.1 AS Enum8('session' = 1, 'family' = 2, 'user' = 3, 'ip' = 4)) AS kind,
    s.2 AS subject,
    visitParamExtractString(raw, 'tenant') AS tenant,
    parseDateTimeBestEffort(visitParamExtractString(raw, 'time')) AS time,
    toInt64(toUInt32(parseDateTimeBestEffort(visitParamExtractString(raw, 'time')))) * 1000000000
      + toInt64(substring(concat(extract(visitParamExtractString(raw, 'time'), '\\.([0-9]+)'), '000000000'), 1, 9)) AS time_ns,
    CAST(visitParamExtractString(raw, 'type') AS Enum8('session.created' = 1, 'login.failed' = 2, 'session.validated' = 3,
        'token.refreshed' = 4, 'token.refresh_failed' = 5, 'session.elevated' = 6,
        'session.logout' = 7, 'session.expired' = 8, 'session.revoked' = 9)) AS type,
    visitParamExtractString(raw, 'id') AS id
FROM {db}.kafka_raw
ARRAY JOIN [
    ('session', visitParamExtractString(raw, 'session_id') AS sid),
    ('family', if(visitParamHas(raw, 'family_id'), visitParamExtractString(raw, 'family_id'), sid) AS fid),
    ('user', visitParamExtractString(raw, 'user_id')),
    ('ip', visitParamExtractString(raw, 'ip'))] AS s
WHERE s.2 != '' AND NOT (s.1 = 'family' AND fid = sid);
DROP TABLE {db}.kafka_raw;
CREATE TABLE {db}.kafka_raw (raw String) ENGINE = Kafka
SETTINGS kafka_broker_list = '{broker}', kafka_topic_list = '{topic}', kafka_group_name = '{group}',
         kafka_format = 'CSV', kafka_row_delimiter = '\n', kafka_num_consumers = {consumers};
