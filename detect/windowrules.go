package detect

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Window detector names.
const (
	LoginStorm   = "login_storm"
	SessionChurn = "session_churn"
)

// windowQuery is what a rule's SQL is built from: the window ends to judge
// (every multiple of step in (from, to], unix seconds), the window length
// and the allowlist filter.
type windowQuery struct {
	db             string
	from, to, step int64
	window         int64
	filter         string // " AND ..." excluding allowlisted users and sources
}

// span bounds the events of every window ending in (from, to].
func (q windowQuery) span() string {
	return fmt.Sprintf("time >= toDateTime(%d) AND time < toDateTime(%d)", q.from-q.window, q.to)
}

// expand assigns each event to every window it falls in: the ends on the
// grid in (t, t+window], kept if in (from, to].
func (q windowQuery) expand() string {
	return fmt.Sprintf("arrayJoin(arrayFilter(e -> e > %d AND e <= %d, arrayMap(i -> toUInt32((intDiv(toUInt32(time), %d) + 1 + i) * %d), range(%d)))) AS w_end",
		q.from, q.to, q.step, q.step, q.window/q.step)
}

// busy narrows a rule to the subjects (values of col) with at least n
// events of the given types in the whole span: no window can reach n
// without them, and the windows' expansion then only touches those.
// GLOBAL runs the subquery once and ships its result to every shard when
// events is a Distributed table (a cluster); on one server it is a plain IN.
func (q windowQuery) busy(col, types string, n int) string {
	return fmt.Sprintf(" AND %s GLOBAL IN (SELECT %s FROM %s.events WHERE type IN (%s) AND %s != '' AND %s GROUP BY %s HAVING count() >= %d)",
		col, col, q.db, types, col, q.span(), col, n)
}

const logins = "'session.created', 'login.failed'"

// A windowRow is one (window, subject) a rule's query returned: the
// window end (unix seconds), the subject, the earliest event time and the
// rule's measures (m) and facts (info), in the order the rule defines.
type windowRow struct {
	end                               int64
	tenant, user, session, family, ip string
	firstNS                           int64
	m                                 []float64
	info                              []string
}

// verdict is a rule's judgement of a row that fires.
type verdict struct {
	kind     string
	severity Severity
	evidence map[string]any
	// firstNS, when set, is the first offending event's time (unix ns),
	// replacing the row's.
	firstNS int64
	// sources are the addresses a many-source finding covers: while its
	// episode is open, rules with coveredBy naming it skip them.
	sources []string
}

// maxSources bounds the addresses a many-source finding remembers.
const maxSources = 1000

// windowRule is one SQL rule of a window detector. Rules with a baseline
// judge a fleet-wide (per tenant) series whose first measure is compared
// with its own history.
type windowRule struct {
	detector string
	name     string // the rule; the episode key and the anomaly id use it
	window   time.Duration
	shadow   bool
	baseline bool
	// kind is the kind a baseline rule raises. While its episode is open
	// and the baseline has history, a window at or above halfway from the
	// median to the threshold keeps it open without raising (hysteresis: a
	// storm ebbing around the threshold is one episode, not several); a
	// window below that (below the threshold, without history) ends it at
	// once, so the next burst is a new incident.
	kind string
	// coveredBy names a many-source rule whose open episode in the same
	// tenant covers this rule's row when it lists the row's address (one
	// campaign, one anomaly).
	coveredBy string
	floor     float64                     // the baseline's absolute floor
	key       func(r *windowRow) []string // the subject an episode is about, after the tenant
	sql       func(q windowQuery) string
	judge     func(r *windowRow, b *Baseline) (verdict, bool)
}

// quote returns s as a ClickHouse string literal.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return strings.Join(q, ", ")
}

// allowFilter is the SQL condition leaving out allowlisted users and sources.
func allowFilter(c WindowConfig) string {
	var b strings.Builder
	if len(c.AllowUsers) > 0 {
		fmt.Fprintf(&b, " AND user_id NOT IN (%s)", quoteList(c.AllowUsers))
	}
	for _, s := range c.AllowCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			continue // Validate rejected it
		}
		p = p.Masked()
		if p.Addr().Is4() {
			a := p.Addr().As4()
			lo := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
			hi := lo | uint32(uint64(1)<<(32-p.Bits())-1)
			fmt.Fprintf(&b, " AND NOT (position(ip, ':') = 0 AND IPv4StringToNum(ip) BETWEEN %d AND %d)", lo, hi)
			continue
		}
		if n := p.Bits() / 8; n > 0 {
			a := p.Addr().As16()
			fmt.Fprintf(&b, " AND NOT (position(ip, ':') > 0 AND substring(IPv6StringToNum(ip), 1, %d) = unhex('%X'))", n, a[:n])
		} else { // ::/0 allows every IPv6 source
			b.WriteString(" AND position(ip, ':') = 0")
		}
	}
	return b.String()
}

const target = "if(user_id = '', concat('?', id), user_id) AS target"

// rules returns the enabled window rules of cfg.
func (c Config) windowRules() []*windowRule {
	var rs []*windowRule
	ls, sc := c.LoginStorm, c.SessionChurn
	if ls.Enabled {
		rs = append(rs, distributedRule(ls), stuffingRule(ls), bruteForceRule(ls), reconnectRule(ls))
	}
	if sc.Enabled {
		rs = append(rs, endBurstRule(sc), shortSessionsRule(sc), sessionFloodRule(sc), refreshLoopRule(sc))
	}
	return rs
}

func severityBy(high, critical bool) Severity {
	switch {
	case critical:
		return SeverityCritical
	case high:
		return SeverityHigh
	}
	return SeverityMedium
}

// stuffingRule: one source tries many accounts, few times each, mostly failing.
func stuffingRule(c LoginStormConfig) *windowRule {
	s := c.Stuffing
	return &windowRule{
		detector: LoginStorm, name: "stuffing", window: s.Window, shadow: c.Shadow, coveredBy: "distributed",
		key: func(r *windowRow) []string { return []string{r.ip} },
		sql: func(q windowQuery) string {
			return `SELECT w_end, tenant, '' AS o_user, '' AS o_session, '' AS o_family, ip AS o_ip, minIf(time_ns, type = 'login.failed') AS first_ns,
  [toFloat64(uniqExact(id)), toFloat64(uniqExactIf(id, type = 'login.failed')), toFloat64(uniqExact(target)),
   toFloat64(uniqExactIf(id, type = 'session.created')), toFloat64(uniqExactIf(id, reason = 'unknown_user'))] AS m,
  [toString(any(asn)), any(country)] AS info
FROM (SELECT id, type, tenant, ip, time_ns, asn, country, reason, ` + target + `, ` + q.expand() + `
      FROM ` + q.db + `.events
      WHERE type IN ('session.created', 'login.failed') AND ip != '' AND ` + q.span() + q.filter + q.busy("ip", logins, s.MinTargets) + `)
GROUP BY w_end, tenant, ip
HAVING uniqExact(target) >= ` + fmt.Sprint(s.MinTargets)
		},
		judge: func(r *windowRow, _ *Baseline) (verdict, bool) {
			attempts, failures, targets, successes, unknown := r.m[0], r.m[1], r.m[2], r.m[3], r.m[4]
			if failures < s.MinFailureRatio*attempts || attempts > s.MaxAttemptsPerTarget*targets {
				return verdict{}, false
			}
			big := targets >= 5*float64(s.MinTargets)
			return verdict{kind: "credential_stuffing", severity: severityBy(big || successes > 0, big && successes > 0), evidence: map[string]any{
				"attempts": attempts, "failures": failures, "accounts": targets, "successes": successes, "unknown_users": unknown,
				"asn": r.info[0], "country": r.info[1],
			}}, true
		},
	}
}

// distributedRule: many hostile sources (each failing on two or more
// accounts) together try many accounts. The hostile sources of each
// network (ASN) are classed together by what they try: a leaked list (a
// tenth or more of their failures are unknown user names:
// credential_stuffing) or a few passwords against real accounts
// (password_spraying); each class is judged on its own, so two campaigns
// in one tenant do not mask each other, and one hosting provider's
// addresses stay one campaign.
func distributedRule(c LoginStormConfig) *windowRule {
	d := c.Distributed
	return &windowRule{
		detector: LoginStorm, name: "distributed", window: d.Window, shadow: c.Shadow,
		key: func(*windowRow) []string { return nil },
		sql: func(q windowQuery) string {
			return fmt.Sprintf(`SELECT w_end, tenant, '' AS o_user, '' AS o_session, '' AS o_family, argMax(top_ip, tuple(top_f, top_ip)) AS o_ip,
  min(first) AS first_ns,
  [toFloat64(sum(srcs)), toFloat64(sum(nf)), toFloat64(sum(na)), toFloat64(length(groupUniqArrayArray(tgs))),
   toFloat64(count()), toFloat64(sum(ns)), toFloat64(sum(nu)), toFloat64(length(groupUniqArrayArray(countries)))] AS m,
  arrayConcat([kind, toString(argMax(asn, tuple(nf, asn)))], arraySlice(arraySort(groupArrayArray(ips)), 1, %d)) AS info
FROM (
  SELECT w_end, tenant, asn, count() AS srcs, sum(f) AS nf, sum(a) AS na, sum(s) AS ns, sum(u) AS nu,
         groupUniqArrayArray(tg) AS tgs, groupUniqArray(country) AS countries, groupArray(ip) AS ips,
         argMax(ip, tuple(f, ip)) AS top_ip, max(f) AS top_f, min(first) AS first,
         if(sum(u) * 10 >= sum(f), 'credential_stuffing', 'password_spraying') AS kind
  FROM (
    SELECT w_end, tenant, ip, any(asn) AS asn, any(country) AS country, uniqExact(id) AS a, uniqExactIf(id, type = 'login.failed') AS f,
           uniqExactIf(id, type = 'session.created') AS s, uniqExactIf(id, reason = 'unknown_user') AS u,
           groupUniqArrayIf(target, type = 'login.failed') AS tg, minIf(time_ns, type = 'login.failed') AS first
    FROM (SELECT id, type, tenant, ip, time_ns, asn, country, reason, `+target+`, `+q.expand()+`
          FROM `+q.db+`.events
          WHERE type IN ('session.created', 'login.failed') AND ip != '' AND `+q.span()+q.filter+q.busy("ip", "'login.failed'", 2)+`)
    GROUP BY w_end, tenant, ip
    HAVING f >= 2 AND f >= %g * a AND length(tg) >= 2
  )
  GROUP BY w_end, tenant, asn
)
GROUP BY w_end, tenant, kind
HAVING sum(srcs) >= %d AND sum(nf) >= %d`, maxSources, d.MinFailureRatio, d.MinSources, d.MinFailures)
		},
		judge: func(r *windowRow, _ *Baseline) (verdict, bool) {
			sources, failures, attempts, targets, asns, successes, unknown, countries := r.m[0], r.m[1], r.m[2], r.m[3], r.m[4], r.m[5], r.m[6], r.m[7]
			if targets < float64(d.MinTargets) {
				return verdict{}, false
			}
			kind := r.info[0]
			big := failures >= 10*float64(d.MinFailures)
			return verdict{kind: kind, severity: severityBy(big || successes > 0, big && successes > 0), sources: r.info[2:], evidence: map[string]any{
				"sources": sources, "attempts": attempts, "failures": failures, "accounts": targets, "successes": successes,
				"unknown_users": unknown, "asns": asns, "countries": countries, "top_asn": r.info[1], "top_source": r.ip,
			}}, true
		},
	}
}

// bruteForceRule: one account tried from many sources.
func bruteForceRule(c LoginStormConfig) *windowRule {
	b := c.BruteForce
	return &windowRule{
		detector: LoginStorm, name: "brute_force", window: b.Window, shadow: c.Shadow,
		key: func(r *windowRow) []string { return []string{r.user} },
		sql: func(q windowQuery) string {
			// Per source first; the failures' times come back newest first
			// (at most maxSources) so the judge can find where the burst began.
			return fmt.Sprintf(`SELECT w_end, tenant, user_id AS o_user, '' AS o_session, '' AS o_family, '' AS o_ip,
  minIf(first_fail, f > 0) AS first_ns,
  [toFloat64(sum(a)), toFloat64(sum(f)), toFloat64(count()), toFloat64(sum(s)), toFloat64(uniqExact(asn)), toFloat64(uniqExact(country))] AS m,
  arrayMap(x -> toString(x), arraySlice(arrayReverseSort(groupArrayArray(fails)), 1, %d)) AS info
FROM (
  SELECT w_end, tenant, user_id, ip, any(asn) AS asn, any(country) AS country, uniqExact(id) AS a,
         uniqExactIf(id, type = 'login.failed') AS f, uniqExactIf(id, type = 'session.created') AS s,
         minIf(time_ns, type = 'login.failed') AS first_fail, groupArrayIf(time_ns, type = 'login.failed') AS fails
  FROM (SELECT id, type, tenant, user_id, ip, time_ns, asn, country, `+q.expand()+`
        FROM `+q.db+`.events
        WHERE type IN ('session.created', 'login.failed') AND user_id != '' AND `+q.span()+q.filter+q.busy("user_id", "'login.failed'", b.MinFailures)+`)
  GROUP BY w_end, tenant, user_id, ip
)
GROUP BY w_end, tenant, user_id
HAVING sum(f) >= %d AND count() >= %d`, maxSources, b.MinFailures, b.MinSources)
		},
		judge: func(r *windowRow, _ *Baseline) (verdict, bool) {
			attempts, failures, sources, successes, asns, countries := r.m[0], r.m[1], r.m[2], r.m[3], r.m[4], r.m[5]
			if failures < 0.5*attempts {
				return verdict{}, false
			}
			big := failures >= 10*float64(b.MinFailures)
			return verdict{kind: "brute_force", severity: severityBy(big || successes > 0, big && successes > 0), firstNS: burstStart(r.info), evidence: map[string]any{
				"attempts": attempts, "failures": failures, "sources": sources, "successes": successes, "asns": asns, "countries": countries,
			}}, true
		},
	}
}

// burstGap is the longest pause inside one burst of failures.
const burstGap = 30 * time.Second

// burstStart returns where the newest burst of failures began, given their
// times (unix ns, decimal) newest first: the attack, not the user's own
// typo minutes before it. Zero when there are none.
func burstStart(newestFirst []string) int64 {
	var start int64
	for _, s := range newestFirst {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			break
		}
		if start != 0 && start-t > int64(burstGap) {
			break
		}
		start = t
	}
	return start
}

// Kinds of the fleet-wide rules.
const (
	reconnectStorm = "reconnect_storm"
	endBurst       = "end_burst"
)

// vigilRevocation leaves out vigil's own revocations: ending attackers'
// sessions is not churn.
const vigilRevocation = "(type = 'session.revoked' AND actor = 'vigil')"

// reconnectRule: a surge of successful logins on devices whose session
// was lost (ended other than routinely) shortly before — known users on
// known devices coming back — judged against the tenant's baseline (a
// login and a loss without device_id match each other, per user). An SRE
// signal, not a security one.
func reconnectRule(c LoginStormConfig) *windowRule {
	rc := c.Reconnect
	lost := fmt.Sprintf("type IN ('session.expired', 'session.revoked') AND NOT %s AND user_id != ''", vigilRevocation)
	if len(rc.RoutineEndReasons) > 0 {
		lost += " AND reason NOT IN (" + quoteList(rc.RoutineEndReasons) + ")"
	}
	return &windowRule{
		detector: LoginStorm, name: "reconnect", window: rc.Window, shadow: c.Shadow, baseline: true, kind: reconnectStorm, floor: float64(rc.MinLogins),
		key: func(*windowRow) []string { return nil },
		sql: func(q windowQuery) string {
			// Each login is matched with its user's losses over the whole
			// span and counts when one came within lookback before it, so
			// the answer for a window does not depend on the span read.
			look := int64(rc.Lookback / time.Second)
			return fmt.Sprintf(`SELECT w_end, tenant, '' AS o_user, '' AS o_session, '' AS o_family, '' AS o_ip, min(time_ns) AS first_ns,
  [toFloat64(uniqExact(id)), toFloat64(uniqExact(user_id)), toFloat64(uniqExact(device_id))] AS m, emptyArrayString() AS info
FROM (SELECT id, tenant, user_id, device_id, time_ns, time, `+q.expand()+`
      FROM (SELECT id, tenant, user_id, device_id, time_ns, time, lost
            FROM (SELECT id, tenant, user_id, device_id, time_ns, time FROM `+q.db+`.events
                  WHERE type = 'session.created' AND user_id != '' AND `+q.span()+q.filter+`)
            ALL INNER JOIN (SELECT tenant, user_id, device_id, groupArray(toUInt32(time)) AS lost FROM `+q.db+`.events
                  WHERE %s AND time >= toDateTime(%d) AND time < toDateTime(%d) GROUP BY tenant, user_id, device_id) USING (tenant, user_id, device_id))
      ARRAY JOIN lost AS lost_at
      WHERE lost_at <= toUInt32(time) AND lost_at + %d > toUInt32(time))
GROUP BY w_end, tenant`, lost, q.from-q.window-look, q.to, look)
		},
		judge: func(r *windowRow, b *Baseline) (verdict, bool) {
			if !b.Exceeded(r.m[0]) {
				return verdict{}, false
			}
			return verdict{kind: reconnectStorm, severity: severityBy(r.m[0] >= 10*b.Threshold, false), evidence: map[string]any{
				"relogins": r.m[0], "users": r.m[1], "devices": r.m[2], "baseline": b,
			}}, true
		},
	}
}

// endBurstRule: a burst of session expiries and revocations against the
// tenant's baseline (a bad signing-key rotation, a purge).
func endBurstRule(c SessionChurnConfig) *windowRule {
	e := c.EndBurst
	return &windowRule{
		detector: SessionChurn, name: "end_burst", window: e.Window, shadow: c.Shadow, baseline: true, kind: endBurst, floor: float64(e.MinEnds),
		key: func(*windowRow) []string { return nil },
		sql: func(q windowQuery) string {
			return `SELECT w_end, tenant, '' AS o_user, '' AS o_session, '' AS o_family, '' AS o_ip, min(time_ns) AS first_ns,
  [toFloat64(uniqExact(id)), toFloat64(uniqExact(user_id)), toFloat64(uniqExactIf(id, type = 'session.revoked'))] AS m,
  topK(3)(reason) AS info
FROM (SELECT id, type, tenant, user_id, reason, time_ns, ` + q.expand() + `
      FROM ` + q.db + `.events
      WHERE type IN ('session.expired', 'session.revoked') AND NOT ` + vigilRevocation + ` AND ` + q.span() + q.filter + `)
GROUP BY w_end, tenant`
		},
		judge: func(r *windowRow, b *Baseline) (verdict, bool) {
			if !b.Exceeded(r.m[0]) {
				return verdict{}, false
			}
			return verdict{kind: endBurst, severity: severityBy(r.m[0] >= 10*b.Threshold, false), evidence: map[string]any{
				"ends": r.m[0], "users": r.m[1], "revocations": r.m[2], "top_reasons": r.info, "baseline": b,
			}}, true
		},
	}
}

// shortSessionsRule: many of the sessions ending in the window lived
// less than max_lifetime (clients thrown out right after logging in).
func shortSessionsRule(c SessionChurnConfig) *windowRule {
	s := c.ShortSessions
	life := s.MaxLifetime.Nanoseconds()
	return &windowRule{
		detector: SessionChurn, name: "short_sessions", window: s.Window, shadow: c.Shadow,
		key: func(*windowRow) []string { return nil },
		sql: func(q windowQuery) string {
			// A session's login is its earliest session.created in the span
			// read; session ids are unique, so the span cannot change it.
			short := fmt.Sprintf("created_ns > 0 AND time_ns >= created_ns AND time_ns - created_ns <= %d", life)
			return fmt.Sprintf(`SELECT w_end, tenant, '' AS o_user, '' AS o_session, '' AS o_family, '' AS o_ip, minIf(time_ns, %s) AS first_ns,
  [toFloat64(uniqExactIf(session_id, %s)), toFloat64(uniqExact(session_id))] AS m, emptyArrayString() AS info
FROM (SELECT session_id, tenant, time_ns, `+q.expand()+`
      FROM `+q.db+`.events
      WHERE type IN ('session.logout', 'session.expired', 'session.revoked') AND NOT `+vigilRevocation+`
        AND session_id != '' AND `+q.span()+q.filter+`)
ANY LEFT JOIN (SELECT session_id, min(time_ns) AS created_ns FROM `+q.db+`.events
    WHERE type = 'session.created' AND session_id != '' AND time >= toDateTime(%d) AND time < toDateTime(%d)
    GROUP BY session_id) USING session_id
GROUP BY w_end, tenant
HAVING uniqExactIf(session_id, %s) >= %d`, short, short, q.from-q.window-int64(s.MaxLifetime/time.Second)-1, q.to, short, s.MinSessions)
		},
		judge: func(r *windowRow, _ *Baseline) (verdict, bool) {
			short, ended := r.m[0], r.m[1]
			if short < s.MinShare*ended {
				return verdict{}, false
			}
			return verdict{kind: "short_sessions", severity: SeverityMedium, evidence: map[string]any{
				"short_sessions": short, "ended_sessions": ended, "max_lifetime": s.MaxLifetime.String(),
			}}, true
		},
	}
}

// sessionFloodRule: one user creates many sessions.
func sessionFloodRule(c SessionChurnConfig) *windowRule {
	f := c.SessionFlood
	return &windowRule{
		detector: SessionChurn, name: "session_flood", window: f.Window, shadow: c.Shadow,
		key: func(r *windowRow) []string { return []string{r.user} },
		sql: func(q windowQuery) string {
			return fmt.Sprintf(`SELECT w_end, tenant, user_id AS o_user, '' AS o_session, '' AS o_family, '' AS o_ip, min(time_ns) AS first_ns,
  [toFloat64(uniqExact(id)), toFloat64(uniqExact(device_id)), toFloat64(uniqExact(ip))] AS m, emptyArrayString() AS info
FROM (SELECT id, tenant, user_id, device_id, ip, time_ns, `+q.expand()+`
      FROM `+q.db+`.events
      WHERE type = 'session.created' AND user_id != '' AND `+q.span()+q.filter+q.busy("user_id", "'session.created'", f.MinSessions)+`)
GROUP BY w_end, tenant, user_id
HAVING uniqExact(id) >= %d`, f.MinSessions)
		},
		judge: func(r *windowRow, _ *Baseline) (verdict, bool) {
			return verdict{kind: "session_flood", severity: severityBy(r.m[0] >= 10*float64(f.MinSessions), false), evidence: map[string]any{
				"sessions": r.m[0], "devices": r.m[1], "sources": r.m[2],
			}}, true
		},
	}
}

// refreshLoopRule: one family refreshes far more often than an access
// token's lifetime needs (a client stuck in a loop, or a scripted abuse).
func refreshLoopRule(c SessionChurnConfig) *windowRule {
	l := c.RefreshLoop
	return &windowRule{
		detector: SessionChurn, name: "refresh_loop", window: l.Window, shadow: c.Shadow,
		key: func(r *windowRow) []string { return []string{r.family} },
		sql: func(q windowQuery) string {
			return fmt.Sprintf(`SELECT w_end, tenant, min(user_id) AS o_user, min(session_id) AS o_session, family_id AS o_family, min(ip) AS o_ip, min(time_ns) AS first_ns,
  [toFloat64(uniqExact(id)), toFloat64(uniqExact(ip))] AS m, emptyArrayString() AS info
FROM (SELECT id, tenant, user_id, session_id, family_id, ip, time_ns, `+q.expand()+`
      FROM `+q.db+`.events
      WHERE type = 'token.refreshed' AND family_id != '' AND `+q.span()+q.filter+q.busy("family_id", "'token.refreshed'", l.MinRefreshes)+`)
GROUP BY w_end, tenant, family_id
HAVING uniqExact(id) >= %d`, l.MinRefreshes)
		},
		judge: func(r *windowRow, _ *Baseline) (verdict, bool) {
			return verdict{kind: "refresh_loop", severity: severityBy(r.m[0] >= 10*float64(l.MinRefreshes), false), evidence: map[string]any{
				"refreshes": r.m[0], "sources": r.m[1],
			}}, true
		},
	}
}
