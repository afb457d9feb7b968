-- Every revocation decision in a window with its final outcome, the
-- anomaly behind it, the guardrail that stopped it, the session API's
-- answer and the time from the first offending event to the revocation.
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
-- {tenant:String}   one tenant, or '' for all
SELECT time, action, scope, toString(status) AS outcome, guardrail, kind, severity, rule,
       user_id, session_id, family_id, ip, http_status, error,
       round(time_to_revoke_ms, 1) AS time_to_revoke_ms, anomaly_id, action_id
FROM actions FINAL
WHERE time >= {from:DateTime} AND time <= {to:DateTime}
  AND status IN ('succeeded', 'failed', 'dry_run', 'suppressed')
  AND ({tenant:String} = '' OR tenant = {tenant:String})
ORDER BY time_ns, action_id
