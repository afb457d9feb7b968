package schemas

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// DefaultMaxMessageBytes is the message size limit used when
// DecoderConfig.MaxMessageBytes is zero or negative.
const DefaultMaxMessageBytes = 64 << 10

// DefaultMaxFutureSkew is the documented default of DecoderConfig.MaxFutureSkew.
const DefaultMaxFutureSkew = 5 * time.Minute

// maxDepth bounds the nesting of JSON values, counting the event object as
// depth 1, like encoding/json.
const maxDepth = 10000

// DecoderConfig sets the limits of a Decoder; DefaultDecoderConfig returns the
// documented defaults.
type DecoderConfig struct {
	// MaxMessageBytes rejects longer messages with too_large; zero or
	// negative means DefaultMaxMessageBytes (64 KiB).
	MaxMessageBytes int
	// MaxFutureSkew is how far an event's time may be ahead of Now before
	// it is rejected with time_in_future. Zero is taken literally (no
	// tolerance at all) and negative values count as zero: set
	// DefaultMaxFutureSkew (5m) explicitly, or start from DefaultDecoderConfig.
	MaxFutureSkew time.Duration
	// Now returns the current time; nil means time.Now. It should not go
	// backwards: the Decoder reads it again only for an event later than
	// the previous reading plus MaxFutureSkew.
	Now func() time.Time
}

// DefaultDecoderConfig returns the documented defaults: 64 KiB messages, 5 minutes of future skew, time.Now.
func DefaultDecoderConfig() DecoderConfig {
	return DecoderConfig{MaxMessageBytes: DefaultMaxMessageBytes, MaxFutureSkew: DefaultMaxFutureSkew}
}

// Decoder decodes and validates v1 events without reflection; it reuses its
// buffers between calls, so it is not safe for concurrent use: create one per
// goroutine.
type Decoder struct {
	maxMsg       int
	skew         time.Duration
	now          func() time.Time
	tooLarge     string    // detail of too_large
	futureDetail string    // detail of time_in_future
	lastNow      time.Time // the last reading of now

	// scanner state, valid during Decode only
	s         []byte
	i         int
	notObject bool

	buf   []byte          // string bytes of the event being decoded, unescaped
	tmp   []byte          // unescaped keys and parse-only values
	spans [numFields]span // string fields, offsets into buf
	attrs []attrSpan      // first MaxAttributes attributes, offsets into buf
	nattr int             // attributes seen, including those past the limit
	seen  uint32          // bit per field present
	empty uint32          // bit per string field present as ""
	typ   Type            // parsed type, TypeUnknown when absent or bad
	t     time.Time       // parsed time
	out   Outcome         // parsed outcome
	actor Actor           // parsed actor
	asn   uint32          // parsed asn
	lat   float64         // parsed latency_ms
	rate  float64         // parsed sample_rate
	err   DecodeError     // the most important rejection found so far
	ekey  uint16          // rank<<10|field<<2|sub of err, 0 when there is none
}

type span struct{ off, end int }

func (s span) len() int { return s.end - s.off }

type attrSpan struct{ k, v span }

// Ranks order the rejections of one message: the reported reason is the one
// of lowest rank, then of lowest field (canonical order), then of lowest
// sub-order within the field. So the reason does not depend on key order, and
// a structural problem (encoding, syntax, shape) wins over a value problem.
const (
	rankEncoding = 1 + iota
	rankSyntax
	rankDuplicate
	rankUnknownField
	rankWrongType
	rankUnknownType
	rankMissing
	rankCount
	rankValue
	rankFuture
)

// NewDecoder returns a Decoder with cfg's limits (see DecoderConfig for the
// defaults of zero values).
func NewDecoder(cfg DecoderConfig) *Decoder {
	d := &Decoder{maxMsg: cfg.MaxMessageBytes, skew: cfg.MaxFutureSkew, now: cfg.Now}
	if d.maxMsg <= 0 {
		d.maxMsg = DefaultMaxMessageBytes
	}
	if d.skew < 0 {
		d.skew = 0
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.tooLarge = "larger than " + strconv.Itoa(d.maxMsg) + " bytes"
	d.futureDetail = "later than now plus " + d.skew.String()
	d.buf = make([]byte, 0, 1024)
	d.tmp = make([]byte, 0, 64)
	d.attrs = make([]attrSpan, 0, MaxAttributes)
	return d
}

// Decode validates msg as one v1 event and overwrites every field of *ev
// with it; a rejection is a *DecodeError and leaves *ev zero. The Event does
// not alias msg, so the caller may reuse msg's buffer.
//
// When a message breaks several rules, the reason reported is, in this
// order: too_large, bad_encoding, malformed_json, duplicate_field,
// unknown_field, wrong_type, unknown_type, missing_field,
// too_many_attributes, the value problems (bad_time, bad_ip, bad_value,
// field_too_long), and last time_in_future; among equals, the field first in
// FieldNames order. So the reason does not depend on the order of the keys.
func (d *Decoder) Decode(msg []byte, ev *Event) error {
	if len(msg) > d.maxMsg {
		*ev = Event{}
		return &DecodeError{Reason: ReasonTooLarge, Detail: d.tooLarge}
	}
	if !utf8.Valid(msg) {
		*ev = Event{}
		return &DecodeError{Reason: ReasonBadEncoding, Detail: "not valid UTF-8"}
	}
	d.reset(msg)
	ok := d.object()
	pos := d.i
	d.s = nil // do not retain the caller's buffer
	if !ok {
		detail := "not a JSON object"
		if !d.notObject {
			detail = "invalid JSON at byte offset " + strconv.Itoa(pos)
		}
		d.failMsg(rankSyntax, ReasonMalformedJSON, detail)
	} else {
		d.check()
	}
	if d.ekey != 0 {
		*ev = Event{}
		return d.error()
	}
	d.fill(ev)
	return nil
}

func (d *Decoder) reset(msg []byte) {
	d.s, d.i, d.notObject = msg, 0, false
	d.buf = d.buf[:0]
	d.spans = [numFields]span{}
	d.attrs = d.attrs[:0]
	d.nattr, d.seen, d.empty = 0, 0, 0
	d.typ, d.t, d.out, d.actor = TypeUnknown, time.Time{}, OutcomeNone, ActorNone
	d.asn, d.lat, d.rate = 0, 0, 1
	d.ekey = 0
}

func (d *Decoder) error() error {
	e := d.err
	return &e
}

// fail records a rejection unless a more important one is already recorded;
// it reports whether this one was recorded.
func (d *Decoder) fail(rank int, f field, r Reason, detail string) bool {
	return d.failSub(rank, f, 0, r, detail)
}

// failSub is fail with a sub-order among the problems of one field and rank.
func (d *Decoder) failSub(rank int, f field, sub int, r Reason, detail string) bool {
	k := uint16(rank)<<10 | uint16(f)<<2 | uint16(sub)
	if d.ekey != 0 && d.ekey <= k {
		return false
	}
	d.ekey = k
	d.err = DecodeError{Reason: r, Detail: detail}
	if f < numFields {
		d.err.Field = fieldNames[f]
	}
	return true
}

// failMsg records a rejection of the message as a whole (no field).
func (d *Decoder) failMsg(rank int, r Reason, detail string) {
	k := uint16(rank) << 10
	if d.ekey != 0 && d.ekey <= k {
		return
	}
	d.ekey = k
	d.err = DecodeError{Reason: r, Detail: detail}
}

func (d *Decoder) has(f field) bool {
	b := uint32(1) << f
	return d.seen&b != 0 && d.empty&b == 0
}

// ---- scanner ----

func (d *Decoder) peek() byte {
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

func (d *Decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// object scans the top-level object, dispatching each member; false means a
// syntax error at d.i. The hot loop keeps the position in a local.
func (d *Decoder) object() bool {
	s := d.s
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '{' {
		d.i, d.notObject = i, true
		return false
	}
	i = skipWS(s, i+1)
	if i < len(s) && s[i] == '}' {
		d.i = skipWS(s, i+1)
		return d.i == len(s)
	}
	for {
		if i >= len(s) || s[i] != '"' {
			d.i = i
			return false
		}
		j, esc := d.scanString(s, i)
		if j < 0 {
			return false
		}
		key := s[i+1 : j-1]
		if esc {
			d.tmp = unescape(d.tmp[:0], key)
			key = d.tmp
		}
		f := lookupField(key)
		if f == fUnknown && d.fail(rankUnknownField, fUnknown, ReasonUnknownField, "not a v1 field (extensions go in attributes)") {
			d.err.Field = keyName(key)
		}
		i = skipWS(s, j)
		if i >= len(s) || s[i] != ':' {
			d.i = i
			return false
		}
		d.i = skipWS(s, i+1)
		var ok bool
		switch bit := uint32(1) << f; {
		case f == fUnknown:
			ok = d.skip(2)
		case d.seen&bit != 0:
			d.fail(rankDuplicate, f, ReasonDuplicateField, "appears more than once")
			ok = d.skip(2)
		default:
			d.seen |= bit
			ok = d.value(f)
		}
		if !ok {
			return false
		}
		i = skipWS(s, d.i)
		if i < len(s) && s[i] == ',' {
			i = skipWS(s, i+1)
			continue
		}
		if i < len(s) && s[i] == '}' {
			d.i = skipWS(s, i+1)
			return d.i == len(s)
		}
		d.i = i
		return false
	}
}

// skipWS returns the index of the first byte at or after i that is not JSON
// whitespace.
func skipWS(s []byte, i int) int {
	for i < len(s) && s[i] <= ' ' && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
		i++
	}
	return i
}

// keyName copies an unknown key for DecodeError.Field, cut to 128 bytes.
func keyName(k []byte) string {
	const max = 128
	if len(k) > max {
		k = k[:max]
		for len(k) > 0 && !utf8.Valid(k) {
			k = k[:len(k)-1]
		}
	}
	return string(k)
}

// value decodes the value of known field f.
func (d *Decoder) value(f field) bool {
	c := d.peek()
	switch f {
	case fASN, fLatencyMS, fSampleRate:
		if c != '-' && (c < '0' || c > '9') {
			d.fail(rankWrongType, f, ReasonWrongType, "must be a number")
			return d.skip(2)
		}
		raw, ok := d.number()
		if ok {
			d.numberField(f, raw)
		}
		return ok
	case fAttributes:
		if c != '{' {
			d.fail(rankWrongType, f, ReasonWrongType, "must be an object of strings")
			return d.skip(2)
		}
		return d.attributes()
	}
	if c != '"' {
		d.fail(rankWrongType, f, ReasonWrongType, "must be a string")
		return d.skip(2)
	}
	s, i := d.s, d.i
	j, esc := d.scanString(s, i)
	if j < 0 {
		return false
	}
	d.i = j
	raw := s[i+1 : j-1]
	if len(raw) == 0 {
		d.empty |= 1 << f
		return true
	}
	switch f {
	case fType, fTime, fOutcome, fActor:
		b := raw
		if esc {
			d.tmp = unescape(d.tmp[:0], raw)
			b = d.tmp
		}
		d.enumField(f, b)
		return true
	}
	off := len(d.buf)
	if esc {
		d.buf = unescape(d.buf, raw)
	} else {
		d.buf = append(d.buf, raw...)
	}
	d.spans[f] = span{off, len(d.buf)}
	return true
}

// enumField parses the non-empty value of type, time, outcome or actor.
func (d *Decoder) enumField(f field, b []byte) {
	switch f {
	case fType:
		if d.typ = parseTypeBytes(b); d.typ == TypeUnknown {
			d.fail(rankUnknownType, fType, ReasonUnknownType, "not one of the nine v1 event types")
		}
	case fTime:
		t, problem := parseTime(b)
		if problem != "" {
			d.fail(rankValue, fTime, ReasonBadTime, problem)
			return
		}
		d.t = t
		if d.inFuture(t) {
			d.fail(rankFuture, fTime, ReasonTimeInFuture, d.futureDetail)
		}
	case fOutcome:
		switch string(b) {
		case "success":
			d.out = OutcomeSuccess
		case "failure":
			d.out = OutcomeFailure
		default:
			d.fail(rankValue, fOutcome, ReasonBadValue, "must be success or failure")
		}
	case fActor:
		switch string(b) {
		case "user":
			d.actor = ActorUser
		case "admin":
			d.actor = ActorAdmin
		case "system":
			d.actor = ActorSystem
		case "vigil":
			d.actor = ActorVigil
		default:
			d.fail(rankValue, fActor, ReasonBadValue, "must be user, admin, system or vigil")
		}
	}
}

// inFuture reports whether t is later than now plus the skew. Now is read
// again only when t is later than the last reading plus the skew: with a clock
// that does not go backwards the answer is the same, and most events skip
// the clock read.
func (d *Decoder) inFuture(t time.Time) bool {
	if !d.lastNow.IsZero() && !t.After(d.lastNow.Add(d.skew)) {
		return false
	}
	d.lastNow = d.now()
	return t.After(d.lastNow.Add(d.skew))
}

func parseTypeBytes(b []byte) Type {
	switch string(b) {
	case "session.created":
		return TypeSessionCreated
	case "login.failed":
		return TypeLoginFailed
	case "session.validated":
		return TypeSessionValidated
	case "token.refreshed":
		return TypeTokenRefreshed
	case "token.refresh_failed":
		return TypeTokenRefreshFailed
	case "session.elevated":
		return TypeSessionElevated
	case "session.logout":
		return TypeSessionLogout
	case "session.expired":
		return TypeSessionExpired
	case "session.revoked":
		return TypeSessionRevoked
	}
	return TypeUnknown
}

// numberField checks the strict-JSON number raw for asn, latency_ms or
// sample_rate. Range checks are exact on the decimal text (like the JSON
// Schema validator's big.Rat), not on a rounded float64.
func (d *Decoder) numberField(f field, raw []byte) {
	if !d.numberFast(f, raw) {
		d.numberSlow(f, raw)
	}
}

// numberFast handles valid values without sign or exponent and with at most
// 19 digits, the usual case; false means "use numberSlow".
func (d *Decoder) numberFast(f field, raw []byte) bool {
	mant, ip, frac, ok := simpleDecimal(raw)
	if !ok {
		return false
	}
	switch f {
	case fASN:
		if mant%pow10u[frac] == 0 && ip <= 1<<32-1 {
			d.asn = uint32(ip)
			return true
		}
	case fLatencyMS:
		if mant < 1<<53 {
			d.lat = float64(mant) / pow10f[frac] // exact operands: correctly rounded, as ParseFloat
			return true
		}
	case fSampleRate:
		if ip >= 1 && mant < 1<<53 {
			d.rate = float64(mant) / pow10f[frac]
			return true
		}
	}
	return false
}

// numberSlow checks any strict JSON number exactly.
func (d *Decoder) numberSlow(f field, raw []byte) {
	n := parseDecimal(raw)
	switch f {
	case fASN:
		v, ok := n.uint32()
		if !ok {
			d.fail(rankValue, f, ReasonBadValue, "must be an integer from 0 to 4294967295")
			return
		}
		d.asn = v
	case fLatencyMS:
		if (n.neg && !n.zero()) || n.aboveMaxFloat() {
			d.fail(rankValue, f, ReasonBadValue, "must be a finite number ≥ 0")
			return
		}
		d.lat = parseFloat(raw)
	case fSampleRate:
		if n.neg || n.zero() || n.order < 1 || n.aboveMaxFloat() {
			d.fail(rankValue, f, ReasonBadValue, "must be a finite number ≥ 1")
			return
		}
		d.rate = parseFloat(raw)
	}
}

var (
	pow10u = [20]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}
	pow10f = [20]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}
)

// simpleDecimal parses raw when it is at most 19 characters of digits with
// an optional fraction: value = mant / 10^frac, ip is the integer part.
func simpleDecimal(raw []byte) (mant, ip uint64, frac int, ok bool) {
	if len(raw) > 19 {
		return 0, 0, 0, false
	}
	i := 0
	for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
		mant = mant*10 + uint64(raw[i]-'0')
		i++
	}
	if i == 0 {
		return 0, 0, 0, false
	}
	ip = mant
	if i < len(raw) && raw[i] == '.' {
		for i++; i < len(raw) && raw[i] >= '0' && raw[i] <= '9'; i++ {
			mant = mant*10 + uint64(raw[i]-'0')
			frac++
		}
	}
	return mant, ip, frac, i == len(raw)
}

func parseFloat(raw []byte) float64 {
	v, _ := strconv.ParseFloat(bstr(raw), 64) // range already checked; underflow rounds to 0
	if v == 0 {
		v = 0 // no -0
	}
	return v
}

// bstr views b as a string without copying; the result must not outlive b's
// current contents.
func bstr(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// attributes scans the attributes object; d.i is at '{'.
func (d *Decoder) attributes() bool {
	d.i++
	d.ws()
	if d.peek() == '}' {
		d.i++
		return true
	}
	for {
		if d.peek() != '"' {
			return false
		}
		raw, esc, ok := d.str()
		if !ok {
			return false
		}
		mark := len(d.buf)
		if esc {
			d.buf = unescape(d.buf, raw)
		} else {
			d.buf = append(d.buf, raw...)
		}
		k := span{mark, len(d.buf)}
		d.ws()
		if d.peek() != ':' {
			return false
		}
		d.i++
		d.ws()
		n := d.nattr
		d.nattr++
		if d.peek() != '"' {
			d.fail(rankWrongType, fAttributes, ReasonWrongType, "attribute values must be strings")
			d.buf = d.buf[:mark]
			if !d.skip(3) {
				return false
			}
		} else {
			raw, esc, ok = d.str()
			if !ok {
				return false
			}
			if n >= MaxAttributes {
				d.buf = d.buf[:mark] // rejected anyway; keep memory bounded
			} else {
				if esc {
					d.buf = unescape(d.buf, raw)
				} else {
					d.buf = append(d.buf, raw...)
				}
				v := span{k.end, len(d.buf)}
				d.checkAttribute(k, v)
				d.attrs = append(d.attrs, attrSpan{k, v})
			}
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
			d.ws()
		case '}':
			d.i++
			d.checkAttributes()
			return true
		default:
			return false
		}
	}
}

// checkAttributes checks the count, then (only when the count is valid, so
// that the reason does not depend on the order) duplicate keys.
func (d *Decoder) checkAttributes() {
	if d.nattr > MaxAttributes {
		d.fail(rankCount, fAttributes, ReasonTooManyAttributes, "more than 32 entries")
		return
	}
	for i := 1; i < len(d.attrs); i++ {
		key := d.buf[d.attrs[i].k.off:d.attrs[i].k.end]
		for _, a := range d.attrs[:i] {
			if bytes.Equal(d.buf[a.k.off:a.k.end], key) {
				d.fail(rankDuplicate, fAttributes, ReasonDuplicateField, "an attribute key appears more than once")
				return
			}
		}
	}
}

// checkAttribute checks the lengths of one attribute.
func (d *Decoder) checkAttribute(k, v span) {
	switch {
	case k.len() == 0:
		d.failSub(rankValue, fAttributes, 0, ReasonBadValue, "attribute key is empty")
	case k.len() > MaxAttributeKeyBytes:
		d.failSub(rankValue, fAttributes, 1, ReasonFieldTooLong, "attribute key longer than 128 bytes")
	}
	if v.len() > MaxAttributeValueBytes {
		d.failSub(rankValue, fAttributes, 2, ReasonFieldTooLong, "attribute value longer than 1024 bytes")
	}
}

// str scans a JSON string at d.i (a '"'), validating it; raw is its text
// between the quotes (aliasing the message) and esc whether it has escapes.
func (d *Decoder) str() (raw []byte, esc bool, ok bool) {
	i := d.i
	j, esc := d.scanString(d.s, i)
	if j < 0 {
		return nil, false, false
	}
	d.i = j
	return d.s[i+1 : j-1], esc, true
}

// scanString validates the JSON string starting at s[i] (a '"') and returns
// the index after its closing quote and whether it has escapes; on a syntax
// error it returns -1 with d.i at the error.
func (d *Decoder) scanString(s []byte, i int) (end int, esc bool) {
	i++
	for {
		if i+8 <= len(s) {
			// 8 bytes at a time; the lowest bit of the mask marks the first
			// '"', '\\' or control character exactly.
			m := specialMask(binary.LittleEndian.Uint64(s[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(s) && !strSpecial[s[i]] {
				i++
			}
			if i >= len(s) {
				d.i = i
				return -1, false
			}
		}
		switch s[i] {
		case '"':
			return i + 1, esc
		case '\\':
			n := d.escape(s, i)
			if n == 0 {
				d.i = i
				return -1, false
			}
			esc = true
			i += n
		default: // a control character must be escaped
			d.i = i
			return -1, false
		}
	}
}

var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// specialMask has the high bit of each byte of v that is '"', '\\' or below
// 0x20 set, and possibly of bytes after the first such byte (borrows), never
// before it.
func specialMask(v uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := v ^ (lo * '"')
	b := v ^ (lo * '\\')
	return ((q-lo)&^q | (b-lo)&^b | (v-lo*0x20)&^v) & hi
}

// escape validates the escape sequence at s[i] (a '\\') and returns its
// length, 0 when it is invalid. An unpaired surrogate is valid JSON syntax
// but not Unicode text: it is recorded as bad_encoding.
func (d *Decoder) escape(s []byte, i int) int {
	if i+1 >= len(s) {
		return 0
	}
	switch s[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		r, ok := hex4(s, i+2)
		if !ok {
			return 0
		}
		if r < 0xD800 || r > 0xDFFF {
			return 6
		}
		if r <= 0xDBFF && i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
			if r2, ok := hex4(s, i+8); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
				return 12
			}
		}
		d.failMsg(rankEncoding, ReasonBadEncoding, "a string has an unpaired UTF-16 surrogate escape")
		return 6
	}
	return 0
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape appends the text of a validated JSON string body to dst.
func unescape(dst, raw []byte) []byte {
	for len(raw) > 0 {
		j := bytes.IndexByte(raw, '\\')
		if j < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:j]...)
		raw = raw[j:]
		c := raw[1]
		switch c {
		case 'u':
			r, _ := hex4(raw, 2)
			raw = raw[6:]
			if r >= 0xD800 && r <= 0xDFFF {
				r2 := rune(-1)
				if r <= 0xDBFF && len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
					r2, _ = hex4(raw, 2)
				}
				if r2 >= 0xDC00 && r2 <= 0xDFFF {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					raw = raw[6:]
				} else {
					r = utf8.RuneError // unpaired: the message is rejected anyway
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		}
		dst = append(dst, c) // '"', '\\', '/' stand for themselves
		raw = raw[2:]
	}
	return dst
}

// number scans a strict JSON number at d.i.
func (d *Decoder) number() ([]byte, bool) {
	s, i := d.s, d.i
	start := i
	digits := func() bool {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	d.i = i
	return s[start:i], true
}

// skip validates and skips any JSON value at d.i, at nesting depth depth.
func (d *Decoder) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch c := d.peek(); c {
	case '"':
		_, _, ok := d.str()
		return ok
	case '{':
		d.i++
		d.ws()
		if d.peek() == '}' {
			d.i++
			return true
		}
		for {
			if d.peek() != '"' {
				return false
			}
			if _, _, ok := d.str(); !ok {
				return false
			}
			d.ws()
			if d.peek() != ':' {
				return false
			}
			d.i++
			d.ws()
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
				d.ws()
			case '}':
				d.i++
				return true
			default:
				return false
			}
		}
	case '[':
		d.i++
		d.ws()
		if d.peek() == ']' {
			d.i++
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			switch d.peek() {
			case ',':
				d.i++
				d.ws()
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			_, ok := d.number()
			return ok
		}
		return false
	}
}

func (d *Decoder) literal(lit string) bool {
	if len(d.s)-d.i < len(lit) || string(d.s[d.i:d.i+len(lit)]) != lit {
		return false
	}
	d.i += len(lit)
	return true
}

// ---- checks after a syntactically valid object ----

var (
	requiredFor   [numTypes]string
	notAllowedFor [numTypes]string
	tooLongDetail [numFields]string
)

const reasonForValidated = "required for session.validated with outcome failure"

func init() {
	for t := TypeSessionCreated; t < numTypes; t++ {
		requiredFor[t] = "required for " + t.String()
		notAllowedFor[t] = "not allowed for " + t.String()
	}
	for f, n := range maxBytes {
		if n > 0 {
			tooLongDetail[f] = "longer than " + strconv.Itoa(n) + " bytes"
		}
	}
}

func (d *Decoder) check() {
	for _, f := range [...]field{fID, fType, fTime} {
		if !d.has(f) {
			d.fail(rankMissing, f, ReasonMissingField, "required")
		}
	}
	for f, n := range maxBytes {
		if n > 0 && d.spans[f].len() > n {
			d.fail(rankValue, field(f), ReasonFieldTooLong, tooLongDetail[f])
		}
	}
	if d.seen&(1<<fIP) != 0 {
		sp := d.spans[fIP]
		if problem := checkIP(d.buf[sp.off:sp.end]); problem != "" {
			d.fail(rankValue, fIP, ReasonBadIP, problem)
		}
	}
	if d.seen&(1<<fCountry) != 0 {
		sp := d.spans[fCountry]
		c := d.buf[sp.off:sp.end]
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
			d.fail(rankValue, fCountry, ReasonBadValue, "must be two upper-case letters (ISO 3166-1 alpha-2)")
		}
	}

	t := d.typ
	// outcome and actor present as "" are bad values unless required (then missing)
	if d.seen&d.empty&(1<<fOutcome) != 0 && t != TypeSessionValidated {
		d.fail(rankValue, fOutcome, ReasonBadValue, "must be success or failure")
	}
	if d.seen&d.empty&(1<<fActor) != 0 && t != TypeSessionRevoked {
		d.fail(rankValue, fActor, ReasonBadValue, "must be user, admin, system or vigil")
	}
	if t == TypeUnknown {
		return
	}
	need := func(f field) {
		if !d.has(f) {
			d.fail(rankMissing, f, ReasonMissingField, requiredFor[t])
		}
	}
	if t != TypeLoginFailed {
		need(fUserID)
	}
	if t.IsSession() || t.IsToken() {
		need(fSessionID)
	}
	if t.IsToken() {
		need(fTokenID)
	}
	switch t {
	case TypeTokenRefreshed:
		need(fParentTokenID)
	case TypeSessionValidated:
		need(fOutcome)
		if d.out == OutcomeFailure && !d.has(fReason) {
			d.fail(rankMissing, fReason, ReasonMissingField, reasonForValidated)
		}
	case TypeSessionRevoked:
		need(fActor)
	}
	switch t {
	case TypeLoginFailed, TypeTokenRefreshFailed, TypeSessionLogout, TypeSessionExpired, TypeSessionRevoked:
		need(fReason)
	}
	if d.out != OutcomeNone {
		switch t {
		case TypeSessionValidated:
		case TypeSessionCreated:
			if d.out != OutcomeSuccess {
				d.fail(rankValue, fOutcome, ReasonBadValue, "must be success for session.created")
			}
		case TypeLoginFailed:
			if d.out != OutcomeFailure {
				d.fail(rankValue, fOutcome, ReasonBadValue, "must be failure for login.failed")
			}
		default:
			d.fail(rankValue, fOutcome, ReasonBadValue, notAllowedFor[t])
		}
	}
}

// fill copies the decoded values into ev: all strings share one allocation.
// checkIP accepts what netip.ParseAddr accepts, without a zone; problem is
// "" when ip is valid. Dotted quads take a fast path.
func checkIP(ip []byte) (problem string) {
	const bad = "not an IPv4 or IPv6 address"
	if bytes.IndexByte(ip, ':') < 0 {
		if !isIPv4(ip) {
			return bad
		}
		return ""
	}
	a, err := netip.ParseAddr(bstr(ip))
	switch {
	case err != nil:
		return bad
	case a.Zone() != "":
		return "an IPv6 zone is not allowed"
	}
	return ""
}

// isIPv4 reports whether b is four decimal octets 0-255 without leading
// zeros, separated by dots (netip's IPv4 syntax).
func isIPv4(b []byte) bool {
	fields, val, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 {
				return false
			}
			fields++
			val, digits = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || (digits == 1 && val == 0) {
			return false // not a digit, or a leading zero
		}
		val = val*10 + int(c-'0')
		digits++
		if val > 255 {
			return false
		}
	}
	return fields == 4
}

func (d *Decoder) fill(ev *Event) {
	s := string(d.buf)
	sub := func(f field) string { return s[d.spans[f].off:d.spans[f].end] }
	session, family := sub(fSessionID), sub(fFamilyID)
	if family == "" {
		family = session
	}
	var attrs []Attribute
	if len(d.attrs) > 0 {
		attrs = make([]Attribute, len(d.attrs))
		for i, a := range d.attrs {
			attrs[i] = Attribute{Key: s[a.k.off:a.k.end], Value: s[a.v.off:a.v.end]}
		}
	}
	// One composite assignment: every field is set, so no reset is needed.
	*ev = Event{
		ID:            sub(fID),
		Type:          d.typ,
		Time:          d.t,
		Source:        sub(fSource),
		Tenant:        sub(fTenant),
		UserID:        sub(fUserID),
		SessionID:     session,
		FamilyID:      family,
		TokenID:       sub(fTokenID),
		ParentTokenID: sub(fParentTokenID),
		IP:            sub(fIP),
		UserAgent:     sub(fUserAgent),
		DeviceID:      sub(fDeviceID),
		Country:       sub(fCountry),
		ASN:           d.asn,
		Outcome:       d.out,
		Reason:        sub(fReason),
		Actor:         d.actor,
		LatencyMS:     d.lat,
		HasLatency:    d.seen&(1<<fLatencyMS) != 0,
		AuthMethod:    sub(fAuthMethod),
		SampleRate:    d.rate,
		Attributes:    attrs,
	}
}

// ---- time ----

var unixEpoch = time.Unix(0, 0).UTC()

// parseTime parses an RFC 3339 date-time as time.Parse(time.RFC3339Nano)
// does, minus its non-RFC leniencies: the fraction has 1 to 9 digits after a
// '.', 'T' and 'Z' are upper case, no leap second (like Go). It also rejects
// instants before the Unix epoch (ClickHouse DateTime cannot hold them) and
// after year 9999. problem is "" on success.
func parseTime(s []byte) (t time.Time, problem string) {
	const bad = "not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM))"
	if len(s) < len("2006-01-02T15:04:05Z") {
		return t, bad
	}
	ok := true
	num := func(b []byte, min, max int) int {
		x := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				ok = false
				return min
			}
			x = x*10 + int(c-'0')
		}
		if x < min || x > max {
			ok = false
		}
		return x
	}
	year := num(s[0:4], 0, 9999)
	month := num(s[5:7], 1, 12)
	day := num(s[8:10], 1, 31)
	hour := num(s[11:13], 0, 23)
	minute := num(s[14:16], 0, 59)
	sec := num(s[17:19], 0, 59)
	if !ok || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return t, bad
	}
	if day > daysIn(month, year) {
		return t, bad
	}
	s = s[19:]
	nsec := 0
	if s[0] == '.' {
		n := 1
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			nsec = nsec*10 + int(s[n]-'0')
			n++
		}
		switch {
		case n == 1:
			return t, bad
		case n > 10:
			return t, "fraction of second has more than 9 digits"
		}
		for i := n; i < 10; i++ {
			nsec *= 10
		}
		s = s[n:]
	}
	offset := 0
	if len(s) != 1 || s[0] != 'Z' {
		if len(s) != len("+07:00") || (s[0] != '+' && s[0] != '-') || s[3] != ':' {
			return t, bad
		}
		oh := num(s[1:3], 0, 23)
		om := num(s[4:6], 0, 59)
		if !ok {
			return t, bad
		}
		offset = (oh*60 + om) * 60
		if s[0] == '-' {
			offset = -offset
		}
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
	}
	switch {
	case t.Before(unixEpoch):
		return time.Time{}, "before 1970-01-01T00:00:00Z"
	case t.Year() > 9999:
		return time.Time{}, "after year 9999"
	}
	return t, ""
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// ---- exact decimal comparisons ----

// decimal is a strict JSON number as sign, significant digits and order of
// magnitude: a non-zero value v has 10^(order-1) ≤ |v| < 10^order.
type decimal struct {
	neg   bool
	ip    []byte // integer-part digits
	fp    []byte // fraction digits
	lo    int    // index of the first non-zero digit in ip++fp
	hi    int    // index after the last non-zero digit in ip++fp (lo == hi: zero)
	order int
	exp   int // the explicit exponent, clamped to ±1e9
}

func parseDecimal(raw []byte) decimal {
	var n decimal
	if raw[0] == '-' {
		n.neg = true
		raw = raw[1:]
	}
	i := 0
	for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
		i++
	}
	n.ip = raw[:i]
	raw = raw[i:]
	if len(raw) > 0 && raw[0] == '.' {
		j := 1
		for j < len(raw) && raw[j] >= '0' && raw[j] <= '9' {
			j++
		}
		n.fp = raw[1:j]
		raw = raw[j:]
	}
	if len(raw) > 0 { // exponent
		raw = raw[1:]
		neg := raw[0] == '-'
		if raw[0] == '+' || raw[0] == '-' {
			raw = raw[1:]
		}
		for _, c := range raw {
			if n.exp < 1e9 {
				n.exp = n.exp*10 + int(c-'0')
			}
		}
		if neg {
			n.exp = -n.exp
		}
	}
	total := len(n.ip) + len(n.fp)
	for n.lo < total && n.digit(n.lo) == 0 {
		n.lo++
	}
	n.hi = total
	for n.hi > n.lo && n.digit(n.hi-1) == 0 {
		n.hi--
	}
	n.order = n.exp + len(n.ip) - n.lo
	return n
}

func (n *decimal) digit(k int) int {
	if k < len(n.ip) {
		return int(n.ip[k] - '0')
	}
	return int(n.fp[k-len(n.ip)] - '0')
}

func (n *decimal) zero() bool { return n.lo == n.hi }

// uint32 returns the value when it is an integer in 0..4294967295.
func (n *decimal) uint32() (uint32, bool) {
	if n.zero() {
		return 0, true
	}
	// value = digits[lo:hi] × 10^e10
	e10 := n.order - (n.hi - n.lo)
	if n.neg || e10 < 0 || n.order > 10 {
		return 0, false
	}
	var v uint64
	for k := n.lo; k < n.hi; k++ {
		v = v*10 + uint64(n.digit(k))
	}
	for ; e10 > 0; e10-- {
		v *= 10
	}
	if v > 1<<32-1 {
		return 0, false
	}
	return uint32(v), true
}

// aboveMaxFloat reports whether |value| > math.MaxFloat64 (1.7976931348623157e308) exactly.
func (n *decimal) aboveMaxFloat() bool {
	const maxDigits, maxOrder = "17976931348623157", 309
	switch {
	case n.zero() || n.order < maxOrder:
		return false
	case n.order > maxOrder:
		return true
	}
	for k := 0; ; k++ {
		switch {
		case k == len(maxDigits):
			return n.lo+k < n.hi // more (non-zero) digits: larger
		case n.lo+k == n.hi:
			return false
		}
		if dk, mk := n.digit(n.lo+k), int(maxDigits[k]-'0'); dk != mk {
			return dk > mk
		}
	}
}
