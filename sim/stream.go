// Package sim simulates a session service: it produces the lifecycle events
// vigil consumes. This file holds the basic, deterministic event stream used
// by the demo, the ingest tests and the benchmarks; it can mix in invalid
// messages, one of each rejection reason in turn.
package sim

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/schemas"
)

// StreamConfig configures a Stream; the zero value is usable.
type StreamConfig struct {
	Seed         uint64        // same seed, same stream
	Users        int           // distinct users; default 1000
	Start        time.Time     // event time of the first event; default 2026-01-05T00:00:00Z
	Step         time.Duration // event time advance per message; default 1ms
	InvalidEvery int           // every n-th message is invalid (cycling through the reasons); 0 = none
}

// Message is one Kafka message of the stream.
type Message struct {
	Key, Value []byte
	Valid      bool
	Reason     schemas.Reason // expected rejection reason when !Valid
	ID         string         // event id when Valid
}

type userState struct {
	id, session, family, token, ip, ua, device, country string
	asn                                                 uint32
	gen                                                 int
}

// Stream generates messages; it is not safe for concurrent use.
type Stream struct {
	cfg   StreamConfig
	rng   *rand.Rand
	users []userState
	n     int
	nInv  int
	buf   []byte
}

// NewStream returns a deterministic stream.
func NewStream(cfg StreamConfig) *Stream {
	if cfg.Users <= 0 {
		cfg.Users = 1000
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	if cfg.Step <= 0 {
		cfg.Step = time.Millisecond
	}
	s := &Stream{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	countries := []string{"US", "DE", "FR", "GB", "BR", "IN", "JP", "NL"}
	uas := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148",
		"okhttp/4.12.0",
	}
	s.users = make([]userState, cfg.Users)
	for i := range s.users {
		u := &s.users[i]
		u.id = fmt.Sprintf("u-%06d", i)
		u.ip = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		u.ua = uas[i%len(uas)]
		u.device = fmt.Sprintf("d-%06d", i)
		u.country = countries[i%len(countries)]
		u.asn = uint32(64500 + i%20)
	}
	return s
}

// Next returns the next message. The returned slices are fresh and may be retained.
func (s *Stream) Next() Message {
	s.n++
	t := s.cfg.Start.Add(time.Duration(s.n) * s.cfg.Step)
	u := &s.users[s.rng.IntN(len(s.users))]
	if s.cfg.InvalidEvery > 0 && s.n%s.cfg.InvalidEvery == 0 {
		return s.invalid(u, t)
	}
	e := s.event(u, t)
	s.buf = schemas.AppendJSON(s.buf[:0], &e)
	key := e.FamilyID
	if key == "" {
		key = e.UserID
	}
	return Message{Key: []byte(key), Value: bytes.Clone(s.buf), Valid: true, ID: e.ID}
}

func (s *Stream) event(u *userState, t time.Time) schemas.Event {
	e := schemas.Event{
		ID: fmt.Sprintf("ev-%d-%d", s.cfg.Seed, s.n), Time: t, Source: "sim", UserID: u.id,
		IP: u.ip, UserAgent: u.ua, DeviceID: u.device, Country: u.country, ASN: u.asn, SampleRate: 1,
	}
	lat := func(base float64) {
		e.LatencyMS, e.HasLatency = base*(0.5+s.rng.ExpFloat64()), true
	}
	if u.session == "" {
		if s.rng.IntN(20) == 0 {
			e.Type, e.Outcome, e.Reason, e.AuthMethod = schemas.TypeLoginFailed, schemas.OutcomeFailure, "bad_password", "password"
			lat(80)
			return e
		}
		u.session = fmt.Sprintf("s-%d-%d", s.cfg.Seed, s.n)
		u.family, u.gen = u.session, 0
		u.token = u.family + ".0"
		e.Type, e.Outcome, e.AuthMethod = schemas.TypeSessionCreated, schemas.OutcomeSuccess, "password"
		e.SessionID, e.FamilyID, e.TokenID = u.session, u.family, u.token
		lat(120)
		return e
	}
	e.SessionID, e.FamilyID = u.session, u.family
	switch r := s.rng.IntN(100); {
	case r < 75:
		e.Type, e.Outcome = schemas.TypeSessionValidated, schemas.OutcomeSuccess
		if r < 2 {
			e.Outcome, e.Reason = schemas.OutcomeFailure, "store_unavailable"
		}
		lat(3)
	case r < 90:
		u.gen++
		parent := u.token
		u.token = u.family + "." + strconv.Itoa(u.gen)
		e.Type, e.TokenID, e.ParentTokenID = schemas.TypeTokenRefreshed, u.token, parent
		lat(15)
	case r < 92:
		e.Type, e.TokenID, e.Reason = schemas.TypeTokenRefreshFailed, u.token, "expired"
	case r < 94:
		e.Type, e.AuthMethod = schemas.TypeSessionElevated, "mfa"
		e.Attributes = []schemas.Attribute{{Key: "scope", Value: "payments"}}
	default:
		switch r {
		case 94, 95, 96:
			e.Type, e.Reason = schemas.TypeSessionLogout, "logout"
		case 97, 98:
			e.Type, e.Reason = schemas.TypeSessionExpired, "idle_timeout"
		default:
			e.Type, e.Reason, e.Actor = schemas.TypeSessionRevoked, "privilege_change", schemas.ActorAdmin
		}
		u.session, u.family, u.token = "", "", ""
	}
	return e
}

// InvalidReasons lists the reasons the stream's invalid messages cycle through.
var InvalidReasons = []schemas.Reason{
	schemas.ReasonMalformedJSON, schemas.ReasonTooLarge, schemas.ReasonBadEncoding, schemas.ReasonDuplicateField,
	schemas.ReasonUnknownField, schemas.ReasonWrongType, schemas.ReasonMissingField, schemas.ReasonUnknownType,
	schemas.ReasonBadTime, schemas.ReasonTimeInFuture, schemas.ReasonBadIP, schemas.ReasonFieldTooLong,
	schemas.ReasonBadValue, schemas.ReasonTooManyAttributes,
}

func (s *Stream) invalid(u *userState, t time.Time) Message {
	r := InvalidReasons[s.nInv%len(InvalidReasons)]
	s.nInv++
	id := fmt.Sprintf("bad-%d-%d", s.cfg.Seed, s.n)
	ts := t.Format(time.RFC3339Nano)
	base := fmt.Sprintf(`"id":%q,"type":"session.validated","time":%q,"user_id":%q,"session_id":"s-x","outcome":"success"`, id, ts, u.id)
	var v string
	switch r {
	case schemas.ReasonMalformedJSON:
		v = `{` + base + `,`
	case schemas.ReasonTooLarge:
		v = `{` + base + `,"attributes":{"pad":"` + strings.Repeat("x", 70<<10) + `"}}`
	case schemas.ReasonBadEncoding:
		v = `{` + base + `,"user_agent":"` + "\xff\xfe" + `"}`
	case schemas.ReasonDuplicateField:
		v = `{` + base + `,"user_id":"other"}`
	case schemas.ReasonUnknownField:
		v = `{` + base + `,"usr_id":"typo"}`
	case schemas.ReasonWrongType:
		v = `{` + base + `,"asn":"64500"}`
	case schemas.ReasonMissingField:
		v = fmt.Sprintf(`{"id":%q,"type":"token.refreshed","time":%q,"user_id":%q,"session_id":"s-x"}`, id, ts, u.id)
	case schemas.ReasonUnknownType:
		v = fmt.Sprintf(`{"id":%q,"type":"session.teleported","time":%q,"user_id":%q,"session_id":"s-x"}`, id, ts, u.id)
	case schemas.ReasonBadTime:
		v = fmt.Sprintf(`{"id":%q,"type":"session.validated","time":"yesterday","user_id":%q,"session_id":"s-x","outcome":"success"}`, id, u.id)
	case schemas.ReasonTimeInFuture:
		v = fmt.Sprintf(`{"id":%q,"type":"session.validated","time":"2999-01-01T00:00:00.000Z","user_id":%q,"session_id":"s-x","outcome":"success"}`, id, u.id)
	case schemas.ReasonBadIP:
		v = `{` + base + `,"ip":"300.1.2.3"}`
	case schemas.ReasonFieldTooLong:
		v = `{` + base + `,"device_id":"` + strings.Repeat("d", 300) + `"}`
	case schemas.ReasonBadValue:
		v = `{` + base + `,"country":"usa"}`
	case schemas.ReasonTooManyAttributes:
		var b strings.Builder
		for i := range 33 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":"v"`, i)
		}
		v = `{` + base + `,"attributes":{` + b.String() + `}}`
	}
	return Message{Key: []byte(u.id), Value: []byte(v), Reason: r}
}
