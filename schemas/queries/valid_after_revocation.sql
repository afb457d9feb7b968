-- Sessions that stayed valid after they were revoked: a successful
-- validation more than the grace period after the session's revocation,
-- i.e. a revocation the session service did not enforce.
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
-- {tenant:String}   one tenant, or '' for all
-- {grace_ms:UInt32} propagation allowance after a revocation, in milliseconds
SELECT session_id,
       any(user) AS user_id,
       toDateTime(intDiv(min(revoked_ns), 1000000000)) AS revoked_at,
       toDateTime(intDiv(min(valid_ns), 1000000000)) AS first_valid_after,
       round((min(valid_ns) - min(revoked_ns)) / 1e6, 1) AS after_ms,
       count() AS validations_after
FROM
(
    SELECT tenant, session_id, user_id AS user, time_ns AS valid_ns
    FROM events
    WHERE time >= {from:DateTime} AND time <= {to:DateTime}
      AND type = 'session.validated' AND outcome = 'success'
      AND ({tenant:String} = '' OR tenant = {tenant:String})
    LIMIT 1 BY type, time, id
) AS v
ALL INNER JOIN
(
    SELECT tenant, session_id, min(time_ns) AS revoked_ns
    FROM events
    WHERE time >= {from:DateTime} AND time <= {to:DateTime} AND type = 'session.revoked'
      AND ({tenant:String} = '' OR tenant = {tenant:String})
    GROUP BY tenant, session_id
) AS r USING (tenant, session_id)
WHERE valid_ns > revoked_ns + toInt64({grace_ms:UInt32}) * 1000000
GROUP BY session_id
ORDER BY revoked_at, session_id
