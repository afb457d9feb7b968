-- Events per minute by type in a window, for charts and to see when
-- traffic changed; failures counted apart.
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
-- {tenant:String}   one tenant, or '' for all
SELECT toStartOfMinute(time) AS minute,
       toString(type) AS type,
       uniqExact(id) AS events,
       uniqExactIf(id, outcome = 'failure' OR type IN ('login.failed', 'token.refresh_failed')) AS failures
FROM events
WHERE time >= {from:DateTime} AND time <= {to:DateTime}
  AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY minute, type
ORDER BY minute, type
