package detect

import (
	"math"

	"github.com/vigilhq/vigil/schemas"
)

// Kinds of session_hijack anomalies.
const (
	// KindImpossibleTravel: the family was used from two countries faster than anyone travels (severity high).
	KindImpossibleTravel = "impossible_travel"
	// KindConcurrentCountries: used from two countries within the window, at a plausible speed (severity medium).
	KindConcurrentCountries = "concurrent_countries"
	// KindConcurrentClients: used within the window by another device or browser on another network (severity medium).
	KindConcurrentClients = "concurrent_clients"
)

// sessionHijack flags a family used by two different clients within the
// window: another country, or another device or user agent on another
// network. A client that only moves network inside a country (a phone
// leaving wifi) is the same client. Uses after token_reuse raised a replay
// in the family (within the window or realert_after, whichever is longer)
// are not raised again here: the replay explains the second client.
//
// Only successful uses by a client count: session.created, a successful
// session.validated, token.refreshed and session.elevated that name an
// address, user agent or device. It owns family.client and clientAt.
type sessionHijack struct {
	cfg SessionHijackConfig
	m   *Metrics
}

func (d *sessionHijack) Name() string { return SessionHijack }

type hijackEvidence struct {
	Event        string   `json:"event"`
	Change       string   `json:"change"`
	Countries    []string `json:"countries,omitempty"`
	GapMS        int64    `json:"gap_ms"`
	DistanceKM   *int64   `json:"distance_km,omitempty"`
	SpeedKMH     *int64   `json:"speed_kmh,omitempty"`
	OtherASN     bool     `json:"other_asn"`
	OtherNetwork bool     `json:"other_network"`
	OtherAgent   bool     `json:"other_user_agent"`
	OtherDevice  bool     `json:"other_device"`
}

func (d *sessionHijack) Observe(o *Observation, f *family, t *table) (Finding, bool) {
	e := o.Event
	switch e.Type {
	case schemas.TypeSessionCreated, schemas.TypeTokenRefreshed, schemas.TypeSessionElevated:
	case schemas.TypeSessionValidated:
		if e.Outcome != schemas.OutcomeSuccess {
			return Finding{}, false
		}
	default:
		return Finding{}, false
	}
	if !o.cl.known() {
		return Finding{}, false
	}
	prev, prevAt := f.client, f.clientAt
	if o.at >= f.clientAt {
		f.client, f.clientAt = o.cl, o.at
	}
	if prevAt == 0 || o.reuse {
		return Finding{}, false
	}
	if r := f.raised[idxTokenReuse]; r != 0 && since(r, o.at) < max(d.cfg.Window, d.cfg.RealertAfter) {
		return Finding{}, false // a replay in this family explains a second client
	}
	change := compare(prev, o.cl)
	gap := since(prevAt, o.at)
	if change == sameClient || gap > d.cfg.Window || gap < -d.cfg.Window {
		return Finding{}, false
	}
	gap = max(gap, -gap)
	differ := func(x, y uint32) bool { return x != 0 && y != 0 && x != y }
	ev := hijackEvidence{
		Event: e.Type.String(), GapMS: gap.Milliseconds(),
		OtherASN: differ(prev.asn, o.cl.asn), OtherNetwork: differ(prev.network, o.cl.network),
		OtherAgent: differ(prev.agent, o.cl.agent), OtherDevice: differ(prev.device, o.cl.device),
	}
	fd := Finding{Kind: KindConcurrentClients, Severity: SeverityMedium, WindowStart: t.timeOf(prevAt)}
	if change == otherCountry {
		ev.Change = "country"
		ev.Countries = []string{string(prev.country[:]), string(o.cl.country[:])}
		fd.Kind = KindConcurrentCountries
		if km, ok := countryDistanceKM(prev.country, o.cl.country); ok {
			speed := math.Inf(1)
			if h := gap.Hours(); h > 0 {
				speed = km / h
			}
			kmi := int64(km)
			ev.DistanceKM = &kmi
			if !math.IsInf(speed, 1) {
				s := int64(speed)
				ev.SpeedKMH = &s
			}
			if speed > d.cfg.MaxTravelKMH {
				fd.Kind, fd.Severity = KindImpossibleTravel, SeverityHigh
			}
		}
	} else {
		ev.Change = "client"
	}
	fd.Evidence = ev
	return fd, true
}
