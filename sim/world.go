package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"
)

// network is where a client connects from.
type network struct {
	ip      string
	asn     uint32
	country string
}

// country is a home country with its residential and mobile carriers.
type country struct {
	code              string
	weight            int
	homeASN, mobileAS []uint32
	v4                [][2]byte // first two octets of its address blocks
}

// countries is the population's spread; ASNs are real carriers of each
// country, addresses come from blocks they announce (roughly).
var countries = []country{
	{"US", 30, []uint32{7922, 701, 20115, 22773}, []uint32{21928, 6167}, [][2]byte{{73, 0}, {98, 200}, {24, 10}, {71, 100}}},
	{"DE", 10, []uint32{3320, 3209}, []uint32{6805, 12430}, [][2]byte{{84, 150}, {91, 40}}},
	{"GB", 8, []uint32{2856, 5089}, []uint32{12576, 206067}, [][2]byte{{86, 128}, {81, 100}}},
	{"FR", 7, []uint32{3215, 12322}, []uint32{51207, 5410}, [][2]byte{{90, 10}, {82, 64}}},
	{"IN", 10, []uint32{9829, 24560}, []uint32{55836, 45609}, [][2]byte{{117, 200}, {49, 36}}},
	{"BR", 8, []uint32{28573, 18881}, []uint32{26599, 26615}, [][2]byte{{177, 32}, {189, 100}}},
	{"JP", 7, []uint32{4713, 2516}, []uint32{9605, 17676}, [][2]byte{{126, 100}, {153, 200}}},
	{"NL", 4, []uint32{1136, 33915}, []uint32{50266, 31615}, [][2]byte{{145, 128}, {84, 80}}},
	{"CA", 6, []uint32{812, 577}, []uint32{22652, 852}, [][2]byte{{99, 224}, {142, 112}}},
	{"AU", 5, []uint32{1221, 4804}, []uint32{133612, 4764}, [][2]byte{{101, 160}, {120, 144}}},
	{"ES", 5, []uint32{3352, 12479}, []uint32{12430, 12357}, [][2]byte{{83, 32}, {88, 0}}},
}

// hosting networks: where stolen tokens and credential lists are replayed from.
var hosting = []struct {
	asn     uint32
	country string
	v4      [2]byte
}{
	{14061, "US", [2]byte{167, 99}},   // DigitalOcean
	{16276, "FR", [2]byte{51, 77}},    // OVH
	{9009, "RO", [2]byte{185, 156}},   // M247
	{24940, "DE", [2]byte{95, 216}},   // Hetzner
	{396982, "SG", [2]byte{34, 87}},   // Google Cloud
	{45102, "CN", [2]byte{47, 74}},    // Alibaba
	{208091, "NL", [2]byte{185, 220}}, // Tor exits live here
}

var (
	desktopUAs = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
	}
	mobileUAs = []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		"ExampleApp/7.4.1 (iPhone; iOS 18.1; Scale/3.00)",
		"ExampleApp/7.4.1 (Android 14; SM-S921B)",
	}
	toolUAs = []string{
		"python-requests/2.32.3",
		"Go-http-client/1.1",
		"curl/8.10.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/130.0.0.0 Safari/537.36",
	}
)

// user is one account.
type user struct {
	id, tenant string
	country    int32   // index in countries
	dev0, ndev int32   // devices[dev0 : dev0+ndev]
	mfa        bool    // has a second factor
	typoRate   float64 // how often this user mistypes the password
}

// device is one client of a user, with a stable network identity; a phone
// alternates between home wifi and its carrier.
type device struct {
	user       int32
	id, ua     string
	mobile     bool
	home, cell network // cell is used only by mobile devices
	onCell     bool
	sess       int32 // live session, or -1
	pendLogin  bool  // a login attempt is scheduled
}

func (d *device) net() network {
	if d.mobile && d.onCell {
		return d.cell
	}
	return d.home
}

// hexID returns prefix followed by 16 hex digits of a hash of (seed, n).
func hexID(prefix string, seed, n uint64) string {
	b := make([]byte, 0, len(prefix)+16)
	b = append(b, prefix...)
	h := mix64(seed ^ mix64(n+0x632be59bd9b4e019))
	for i := 60; i >= 0; i -= 4 {
		b = append(b, "0123456789abcdef"[h>>uint(i)&15])
	}
	return string(b)
}

// mix64 is the splitmix64 finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func pickCountry(r *rand.Rand) int32 {
	total := 0
	for _, c := range countries {
		total += c.weight
	}
	n := r.IntN(total)
	for i, c := range countries {
		if n < c.weight {
			return int32(i)
		}
		n -= c.weight
	}
	return 0
}

// residential returns an address in country c on one of its home or mobile carriers.
func residential(r *rand.Rand, c *country, mobile bool) network {
	asns := c.homeASN
	if mobile {
		asns = c.mobileAS
	}
	blk := c.v4[r.IntN(len(c.v4))]
	if r.IntN(8) == 0 { // some clients are on IPv6
		a := [16]byte{0x20, 0x01, 0x0d, 0xb8, blk[0], blk[1], byte(r.IntN(256)), byte(r.IntN(256))}
		for i := 8; i < 16; i++ {
			a[i] = byte(r.IntN(256))
		}
		return network{ip: netip.AddrFrom16(a).String(), asn: asns[r.IntN(len(asns))], country: c.code}
	}
	ip := netip.AddrFrom4([4]byte{blk[0], blk[1] + byte(r.IntN(16)), byte(r.IntN(256)), byte(1 + r.IntN(254))})
	return network{ip: ip.String(), asn: asns[r.IntN(len(asns))], country: c.code}
}

// hostingNet returns an address in a hosting provider.
func hostingNet(r *rand.Rand) network {
	h := hosting[r.IntN(len(hosting))]
	ip := netip.AddrFrom4([4]byte{h.v4[0], h.v4[1], byte(r.IntN(256)), byte(1 + r.IntN(254))})
	return network{ip: ip.String(), asn: h.asn, country: h.country}
}

// foreignNet returns a residential address in a country other than home.
func foreignNet(r *rand.Rand, home int32) network {
	for {
		c := pickCountry(r)
		if c != home {
			return residential(r, &countries[c], r.IntN(2) == 0)
		}
	}
}

// buildWorld creates the users and their devices.
func (s *Simulator) buildWorld() {
	r := s.rng
	s.users = make([]user, s.cfg.Users)
	s.devices = make([]device, 0, s.cfg.Users*2)
	width := len(strconv.Itoa(s.cfg.Users - 1))
	for i := range s.users {
		u := &s.users[i]
		u.id = fmt.Sprintf("user-%0*d", max(width, 6), i)
		if s.cfg.Tenants > 1 {
			u.tenant = fmt.Sprintf("tenant-%02d", i%s.cfg.Tenants+1)
		}
		u.country = pickCountry(r)
		u.mfa = r.IntN(3) == 0
		u.typoRate = 0.01 + r.ExpFloat64()*0.03
		c := &countries[u.country]
		home := residential(r, c, false)
		n := 1 + r.IntN(3)
		if r.IntN(2) == 0 {
			n = 1 + r.IntN(2)
		}
		u.dev0, u.ndev = int32(len(s.devices)), int32(n)
		for k := range n {
			d := device{user: int32(i), sess: -1, id: hexID("dev_", s.cfg.Seed, uint64(len(s.devices)))}
			d.mobile = k > 0 || r.IntN(4) == 0
			d.home = home
			if d.mobile {
				d.ua = mobileUAs[r.IntN(len(mobileUAs))]
				d.cell = residential(r, c, true)
			} else {
				d.ua = desktopUAs[r.IntN(len(desktopUAs))]
				if r.IntN(5) == 0 { // a work laptop on another network
					d.home = residential(r, c, false)
				}
			}
			s.devices = append(s.devices, d)
		}
	}
}

// latency draws a server-side latency in milliseconds: log-normal around
// median with a heavy tail, slowed down by factor.
func latency(r *rand.Rand, median, factor float64) float64 {
	ms := median * math.Exp(0.45*r.NormFloat64())
	if r.IntN(100) == 0 {
		ms *= 4 + 8*r.Float64()
	}
	return math.Round(ms*factor*1000) / 1000
}

// load is the diurnal and weekly load multiplier at t (UTC): lowest around
// 04:00, highest in the early afternoon, lower at weekends, a Monday bump.
func load(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	day := 0.55 + 0.45*math.Cos((h-14)/24*2*math.Pi)
	switch t.Weekday() {
	case time.Saturday:
		day *= 0.6
	case time.Sunday:
		day *= 0.55
	case time.Monday:
		if h >= 7 && h < 11 {
			day *= 1.25
		}
	}
	return day / 0.75 // the weekday mean is about 0.75
}
