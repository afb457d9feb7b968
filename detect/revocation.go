package detect

import (
	"time"

	"github.com/vigilhq/vigil/schemas"
)

// KindRevocationNotEnforced: a revoked session or family was used successfully after the grace.
const KindRevocationNotEnforced = "revocation_not_enforced"

// useAfterRevocation flags a successful session.validated or
// token.refreshed in a family that was revoked (session.revoked, by any
// actor) more than the propagation grace earlier: the session service is
// not enforcing the revocation. It raises once per revocation, and the
// anomaly's id derives from the revocation's time, so every replay raises
// the same one. It owns family.revoked.
type useAfterRevocation struct {
	cfg UseAfterRevocationConfig
}

func (d *useAfterRevocation) Name() string { return UseAfterRevocation }

type revocationEvidence struct {
	Event             string `json:"event"`
	SinceRevocationMS int64  `json:"since_revocation_ms"`
	GraceMS           int64  `json:"grace_ms"`
}

func (d *useAfterRevocation) Observe(o *Observation, f *family, t *table) (Finding, bool) {
	e := o.Event
	switch {
	case e.Type == schemas.TypeSessionRevoked:
		if at := f.revoked &^ raisedBit; at == 0 || o.at < at {
			f.revoked = o.at | f.revoked&raisedBit
		}
		return Finding{}, false
	case e.Type == schemas.TypeSessionValidated && e.Outcome == schemas.OutcomeSuccess,
		e.Type == schemas.TypeTokenRefreshed:
	default:
		return Finding{}, false
	}
	if f.revoked == 0 || f.revoked&raisedBit != 0 {
		return Finding{}, false
	}
	after := since(f.revoked, o.at)
	if after <= d.cfg.Grace {
		return Finding{}, false
	}
	f.revoked |= raisedBit
	fd := Finding{Kind: KindRevocationNotEnforced, Severity: SeverityHigh, Evidence: revocationEvidence{
		Event: e.Type.String(), SinceRevocationMS: after.Milliseconds(), GraceMS: d.cfg.Grace.Milliseconds(),
	}}
	fd.WindowStart = t.timeOf(f.revoked)
	fd.Key = fd.WindowStart
	if f.revoked&^raisedBit == 1 {
		// So long ago that the state kept only "long ago": the id must not
		// depend on this process's epoch.
		fd.WindowStart, fd.Key = time.Time{}, time.Unix(0, 0).UTC()
	}
	return fd, true
}
