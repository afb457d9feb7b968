-- Events per step by type in a window, for charts and to see when traffic
-- changed; failures counted apart.
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
-- {tenant:String}   one tenant, or '' for all
-- {step_s:UInt32}   the step in seconds, e.g. 60 for events per minute
SELECT toDateTime(intDiv(toUInt32(time), {step_s:UInt32}) * {step_s:UInt32}) AS step_start,
       toString(type) AS type,
       uniqExact(id) AS events,
       uniqExactIf(id, outcome = 'failure' OR type IN ('login.failed', 'token.refresh_failed')) AS failures
FROM events
WHERE time >= {from:DateTime} AND time <= {to:DateTime}
  AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY step_start, type
ORDER BY step_start, type
