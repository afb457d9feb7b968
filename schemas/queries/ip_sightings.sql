-- First and last sighting of an IP address, with what it did: events,
-- failed logins, the users and sessions it touched, its networks and
-- countries. Found through event_subjects.
-- {ip:String}       the address
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
SELECT ip,
       min(time) AS first_seen,
       max(time) AS last_seen,
       uniqExact(id) AS events,
       uniqExactIf(id, type = 'login.failed') AS failed_logins,
       uniqExactIf(id, type = 'session.created') AS logins,
       uniqExactIf(user_id, user_id != '') AS users,
       uniqExactIf(session_id, session_id != '') AS sessions,
       arrayStringConcat(arraySort(groupUniqArray(toString(asn))), ',') AS asns,
       arrayStringConcat(arraySort(groupUniqArrayIf(country, country != '')), ',') AS countries
FROM events
WHERE time >= {from:DateTime} AND time <= {to:DateTime}
  AND (type, time, id) GLOBAL IN
  (
      SELECT type, time, id
      FROM event_subjects
      WHERE kind = 'ip' AND subject = {ip:String} AND time >= {from:DateTime} AND time <= {to:DateTime}
  )
GROUP BY ip
