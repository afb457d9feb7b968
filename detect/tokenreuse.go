package detect

import (
	"github.com/vigilhq/vigil/schemas"
)

// Kinds of token_reuse anomalies; all are theft, severity critical.
const (
	// KindReplayOtherClient: the newest exchanged token was exchanged again from another client.
	KindReplayOtherClient = "replay_other_client"
	// KindReplayAfterLeeway: the same client exchanged the newest token again, later than the leeway allows.
	KindReplayAfterLeeway = "replay_after_leeway"
	// KindReplayOlderGeneration: a token older than the newest exchanged one was presented again.
	KindReplayOlderGeneration = "replay_older_generation"
	// KindReplayReported: the session service refused a token as reused, and vigil has no record of its exchange.
	KindReplayReported = "replay_reported"
)

// tokenReuse flags a refresh token presented after it was exchanged: a
// second token.refreshed with the same parent_token_id, or a
// token.refresh_failed with reason "reused". The newest exchanged token,
// presented again by the same client within the leeway, is the benign race
// of two tabs or a retried request: counted, not raised. Anything else is
// theft.
//
// It owns family.tokens, exchanged and exchClient.
type tokenReuse struct {
	cfg TokenReuseConfig
	m   *Metrics
}

func (d *tokenReuse) Name() string { return TokenReuse }

// reuseEvidence is the evidence of a token_reuse anomaly. Token ids are
// left out: they are credentials' names, and the event holds them.
type reuseEvidence struct {
	Event            string `json:"event"`
	Generation       int    `json:"generations_behind"` // 1: the newest exchanged token; 0: unknown
	SinceRotationMS  *int64 `json:"since_rotation_ms,omitempty"`
	SameClient       *bool  `json:"same_client,omitempty"`
	LeewayMS         int64  `json:"leeway_ms"`
	ReportedBySource bool   `json:"reported_by_source"`
}

func (d *tokenReuse) Observe(o *Observation, f *family, t *table) (Finding, bool) {
	e := o.Event
	var presented string
	switch {
	case e.Type == schemas.TypeTokenRefreshed && e.ParentTokenID != "":
		presented = e.ParentTokenID
	case e.Type == schemas.TypeTokenRefreshFailed && e.Reason == "reused" && e.TokenID != "":
		presented = e.TokenID
	default:
		return Finding{}, false
	}
	h := hash64(presented)
	i := 0
	for i < ringSize && f.tokens[i] != h {
		i++
	}
	reported := e.Type == schemas.TypeTokenRefreshFailed
	if i == ringSize { // never exchanged as far as we know
		if !reported {
			copy(f.tokens[1:], f.tokens[:ringSize-1])
			copy(f.exchanged[1:], f.exchanged[:ringSize-1])
			f.tokens[0], f.exchanged[0], f.exchClient = h, o.at, o.cl.exact()
			return Finding{}, false
		}
		o.reuse = true
		return Finding{Kind: KindReplayReported, Severity: SeverityCritical, Evidence: reuseEvidence{
			Event: e.Type.String(), LeewayMS: d.cfg.Leeway.Milliseconds(), ReportedBySource: true,
		}}, true
	}
	age := since(f.exchanged[i], o.at)
	same := i == 0 && f.exchClient == o.cl.exact()
	if i == 0 && same && age <= d.cfg.Leeway {
		if d.m != nil {
			d.m.Benign.WithLabelValues(TokenReuse, "same_client_race").Inc()
		}
		return Finding{}, false
	}
	kind := KindReplayOtherClient
	switch {
	case i > 0:
		kind = KindReplayOlderGeneration
	case same:
		kind = KindReplayAfterLeeway
	}
	ms := age.Milliseconds()
	o.reuse = true
	return Finding{Kind: kind, Severity: SeverityCritical, WindowStart: t.timeOf(f.exchanged[i]), Evidence: reuseEvidence{
		Event: e.Type.String(), Generation: i + 1, SinceRotationMS: &ms, SameClient: &same,
		LeewayMS: d.cfg.Leeway.Milliseconds(), ReportedBySource: reported,
	}}, true
}
