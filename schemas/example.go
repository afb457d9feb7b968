package schemas

import "time"

// TokenTheft returns a session's login and first token rotation from its
// owner's client around now, and the replay of the rotated token from an
// attacker's client ten seconds later: tenant acme, user u1, session and
// family s1/f1, tokens rt0 → rt1, replayed rt0 → rtX. Tests and the
// latency benchmarks use it, giving each theft its own ids.
func TokenTheft(now time.Time) (created, rotation, replay Event) {
	ev := func(id string, typ Type, at time.Duration, ip, ua, country string, asn uint32) Event {
		return Event{ID: id, Type: typ, Time: now.Add(at), Tenant: "acme", UserID: "u1", SessionID: "s1", FamilyID: "f1",
			IP: ip, UserAgent: ua, Country: country, ASN: asn, SampleRate: 1}
	}
	created = ev("e1", TypeSessionCreated, 0, "84.150.3.7", "Firefox/132.0", "DE", 3320)
	created.Outcome, created.TokenID = OutcomeSuccess, "rt0"
	rotation = ev("e2", TypeTokenRefreshed, 10*time.Second, "84.150.3.7", "Firefox/132.0", "DE", 3320)
	rotation.ParentTokenID, rotation.TokenID = "rt0", "rt1"
	replay = ev("e3", TypeTokenRefreshed, 20*time.Second, "167.99.10.20", "python-requests/2.32.3", "US", 14061)
	replay.ParentTokenID, replay.TokenID = "rt0", "rtX"
	return created, rotation, replay
}
