package detect

import (
	"math"
	"net/netip"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/vigilhq/vigil/schemas"
)

// client is what the detectors remember of the client behind an event,
// hashed to fixed size. A zero field means the event did not say.
type client struct {
	agent   uint32  // user agent
	device  uint32  // device id
	network uint32  // the /24 of an IPv4 address, the /48 of an IPv6 one
	asn     uint32  //
	country [2]byte // ISO 3166-1 alpha-2
}

// hash32 hashes a non-empty string to a non-zero 32-bit value, "" to 0.
func hash32(s string) uint32 {
	if s == "" {
		return 0
	}
	return uint32(xxhash.Sum64String(s)) | 1
}

// hash64 hashes a token id.
func hash64(s string) uint64 { return xxhash.Sum64String(s) }

// agentCache remembers the hashes of recently seen user agents: a service
// sees few distinct ones, and they are long, so hashing each event's would
// dominate the detectors' cost. Direct-mapped; a miss just hashes.
type agentCache [256]struct {
	s string
	h uint32
}

// hash returns hash32(ua), from the cache when it holds ua.
func (c *agentCache) hash(ua string) uint32 {
	n := len(ua)
	if n == 0 {
		return 0
	}
	e := &c[(n*31+int(ua[n-1])*7+int(ua[n/2]))&255]
	if e.s == ua {
		return e.h
	}
	e.s, e.h = ua, hash32(ua)
	return e.h
}

// clientOf extracts the client of an event.
func clientOf(e *schemas.Event, agents *agentCache) client {
	c := client{agent: agents.hash(e.UserAgent), device: hash32(e.DeviceID), network: networkOf(e.IP), asn: e.ASN}
	if len(e.Country) == 2 {
		c.country = [2]byte{e.Country[0], e.Country[1]}
	}
	return c
}

// known reports whether the event said anything about its client.
func (c client) known() bool { return c.agent|c.device|c.network|c.asn != 0 || c.country != [2]byte{} }

// exact is one value for the whole client (user agent, device and
// network): equal values are the same client for the reuse race.
func (c client) exact() uint32 {
	h := mix64(uint64(c.agent)<<32 | uint64(c.device))
	h = mix64(h ^ (uint64(c.network)<<32 | uint64(c.asn)))
	return uint32(h>>32) | 1
}

// mix64 is the splitmix64 finaliser.
func mix64(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	return z ^ z>>31
}

// networkOf hashes the /24 (IPv4) or /48 (IPv6) network of ip; 0 for "".
func networkOf(ip string) uint32 {
	if ip == "" {
		return 0
	}
	if !strings.Contains(ip, ":") {
		// Dotted IPv4, validated by the decoder: the network is the text
		// before the last dot.
		if i := strings.LastIndexByte(ip, '.'); i > 0 {
			return hash32(ip[:i])
		}
		return hash32(ip)
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return hash32(ip)
	}
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	b, _ := p.Addr().MarshalBinary()
	return hash32(string(b))
}

// clientChange says how two clients of one family differ.
type clientChange uint8

const (
	sameClient   clientChange = iota
	otherClient               // another device or browser on another network, same country
	otherCountry              // another country
)

// compare judges whether b is another client than a: another country, or
// another device or user agent on another network (ASN or /24). The same
// device and user agent on another network of the same country is the
// same client moving (a phone leaving wifi), and another user agent on the
// same network is a browser update or a second browser at home: neither
// counts.
func compare(a, b client) clientChange {
	if a.country != [2]byte{} && b.country != [2]byte{} && a.country != b.country {
		return otherCountry
	}
	differ := func(x, y uint32) bool { return x != 0 && y != 0 && x != y }
	if (differ(a.device, b.device) || differ(a.agent, b.agent)) && (differ(a.asn, b.asn) || differ(a.network, b.network)) {
		return otherClient
	}
	return sameClient
}

//go:generate go run ./internal/gencentroids

// centroids maps ISO 3166-1 alpha-2 codes to a country's geographic
// centre in radians (centroidDegrees, generated from the gountries
// dataset), built on first use.
var centroids = sync.OnceValue(func() map[[2]byte][2]float64 {
	m := make(map[[2]byte][2]float64, len(centroidDegrees))
	for code, c := range centroidDegrees {
		m[code] = [2]float64{c[0] * math.Pi / 180, c[1] * math.Pi / 180}
	}
	return m
})

// countryDistanceKM returns the great-circle distance between the centres
// of two countries; ok is false when either is unknown.
func countryDistanceKM(a, b [2]byte) (km float64, ok bool) {
	m := centroids()
	p, ok1 := m[a]
	q, ok2 := m[b]
	if !ok1 || !ok2 {
		return 0, false
	}
	const earthKM = 6371.0
	dlat, dlon := q[0]-p[0], q[1]-p[1]
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(p[0])*math.Cos(q[0])*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * earthKM * math.Asin(math.Min(1, math.Sqrt(h))), true
}
