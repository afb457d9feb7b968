package detect

import (
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/vigilhq/vigil/schemas"
)

// SyntheticFamily returns the three events of a typical token family i:
// a login at at, one refresh-token rotation a minute later and a
// validation a minute after that, from one client. The memory benchmarks
// (BenchmarkStateBytesPerFamily, `vigil bench`) fill the state with them.
func SyntheticFamily(i int, at time.Time) [3]schemas.Event {
	fam := "fam_" + strconv.Itoa(i)
	base := schemas.Event{Time: at, Tenant: "acme", UserID: "u" + strconv.Itoa(i), SessionID: fam, FamilyID: fam,
		IP: fmt.Sprintf("84.%d.%d.%d", 150+i%50, i>>8&255, i&255), ASN: 3320, Country: "DE",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0", DeviceID: "dev_" + strconv.Itoa(i)}
	var e [3]schemas.Event
	e[0], e[1], e[2] = base, base, base
	e[0].Type, e[0].Outcome, e[0].TokenID = schemas.TypeSessionCreated, schemas.OutcomeSuccess, "rt0_"+fam
	e[1].Type, e[1].ParentTokenID, e[1].TokenID, e[1].Time = schemas.TypeTokenRefreshed, "rt0_"+fam, "rt1_"+fam, at.Add(time.Minute)
	e[2].Type, e[2].Outcome, e[2].Time = schemas.TypeSessionValidated, schemas.OutcomeSuccess, at.Add(2*time.Minute)
	return e
}

// StateBytesPerFamily measures the heap the stream detectors' state holds
// per tracked family: the heap growth after garbage collection while one
// partition tracks n synthetic families (SyntheticFamily). It allocates
// about n × 100 bytes; run it alone for a clean figure.
func StateBytesPerFamily(cfg Config, n int) (float64, error) {
	reg, err := NewRegistry(cfg, RegistryOptions{})
	if err != nil {
		return 0, err
	}
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var before, after runtime.MemStats
	runtime.GC() // twice: finalizers of the first round free more
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := reg.Partition(0)
	defer p.Close()
	for i := range n {
		evs := SyntheticFamily(i, start.Add(time.Duration(i)*time.Microsecond))
		for j := range evs {
			p.Observe(&evs[j], 0, nil)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := p.Families(); got != n {
		return 0, fmt.Errorf("detect: %d families tracked, want %d", got, n)
	}
	b := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	runtime.KeepAlive(p)
	return b / float64(n), nil
}
