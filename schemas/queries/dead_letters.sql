-- Messages vigil refused in a window, by reason and offending field, with
-- the first and last and an example detail.
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
SELECT reason,
       field,
       count() AS messages,
       min(message_time) AS first,
       max(message_time) AS last,
       any(detail) AS example
FROM dead_letters FINAL
WHERE message_time >= {from:DateTime} AND message_time <= {to:DateTime}
GROUP BY reason, field
ORDER BY messages DESC, reason, field
