-- First and last sighting of a network (ASN) in a window, with what came
-- from it: events, failed logins, addresses, users and countries.
-- {asn:UInt32}      the autonomous system number
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
SELECT asn,
       min(time) AS first_seen,
       max(time) AS last_seen,
       uniqExact(id) AS events,
       uniqExactIf(id, type = 'login.failed') AS failed_logins,
       uniqExactIf(id, type = 'session.created') AS logins,
       uniqExact(ip) AS ips,
       uniqExactIf(user_id, user_id != '') AS users,
       arrayStringConcat(arraySort(groupUniqArrayIf(country, country != '')), ',') AS countries
FROM events
WHERE time >= {from:DateTime} AND time <= {to:DateTime} AND asn = {asn:UInt32}
GROUP BY asn
