-- Where failed logins came from in a window: the top addresses, networks
-- (ASNs) or countries, with how many users each tried.
-- {by:String}       ip, asn or country
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
-- {tenant:String}   one tenant, or '' for all
-- {limit:UInt32}    how many to list
SELECT multiIf({by:String} = 'ip', ip, {by:String} = 'asn', toString(asn), country) AS source,
       uniqExact(id) AS failed_logins,
       uniqExactIf(user_id, user_id != '') AS users,
       uniqExact(ip) AS ips,
       min(time) AS first,
       max(time) AS last
FROM events
WHERE time >= {from:DateTime} AND time <= {to:DateTime}
  AND type = 'login.failed'
  AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY source
ORDER BY failed_logins DESC, source
LIMIT {limit:UInt32}
