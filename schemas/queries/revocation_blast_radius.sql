-- The blast radius of a revocation wave: vigil's actions in a window by
-- action, scope and final outcome (or the guardrail that stopped them),
-- with the users, sessions and families they reached and how fast (time
-- to revoke, from the first offending event; NULL without revocations).
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
-- {tenant:String}   one tenant, or '' for all
SELECT action,
       scope,
       toString(status) AS outcome,
       guardrail,
       uniqExact(action_id) AS actions,
       uniqExactIf(user_id, user_id != '') AS users,
       uniqExactIf(session_id, session_id != '') AS sessions,
       uniqExactIf(family_id, family_id != '') AS families,
       min(time) AS first,
       max(time) AS last,
       if(countIf(time_to_revoke_ms > 0) = 0, NULL, round(quantileExactIf(0.5)(time_to_revoke_ms, time_to_revoke_ms > 0), 1)) AS ttr_p50_ms,
       if(countIf(time_to_revoke_ms > 0) = 0, NULL, round(quantileExactIf(0.99)(time_to_revoke_ms, time_to_revoke_ms > 0), 1)) AS ttr_p99_ms,
       if(countIf(time_to_revoke_ms > 0) = 0, NULL, round(maxIf(time_to_revoke_ms, time_to_revoke_ms > 0), 1)) AS ttr_max_ms
FROM actions FINAL
WHERE time >= {from:DateTime} AND time <= {to:DateTime}
  AND status IN ('succeeded', 'failed', 'dry_run', 'suppressed')
  AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY action, scope, status, guardrail
ORDER BY action, scope, outcome, guardrail
