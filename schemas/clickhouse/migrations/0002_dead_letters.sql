-- Every rejected message with its original bytes and headers; keyed by its
-- Kafka position so a replay collapses. Partitioned by the message's Kafka
-- timestamp day (deterministic across replays).
CREATE TABLE IF NOT EXISTS ${db}.dead_letters
(
    topic        String,
    partition    UInt32,
    offset       Int64,
    message_time DateTime,
    received_at  DateTime,
    reason       String,
    field        String,
    detail       String,
    key          String,
    value        String,
    headers      Nested(key String, value String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(message_time)
ORDER BY (topic, partition, offset);
