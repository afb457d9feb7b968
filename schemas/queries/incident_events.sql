-- The traffic of an incident window by event type: how many events,
-- failures, users, sessions, addresses and countries.
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
-- {tenant:String}   one tenant, or '' for all
SELECT toString(type) AS type,
       uniqExact(id) AS events,
       uniqExactIf(id, outcome = 'failure' OR type IN ('login.failed', 'token.refresh_failed')) AS failures,
       uniqExactIf(user_id, user_id != '') AS users,
       uniqExactIf(session_id, session_id != '') AS sessions,
       uniqExactIf(ip, ip != '') AS ips,
       uniqExactIf(country, country != '') AS countries
FROM events
WHERE time >= {from:DateTime} AND time <= {to:DateTime}
  AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY type
ORDER BY type
