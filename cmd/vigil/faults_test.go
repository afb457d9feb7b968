package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/pseudonym"
	"github.com/vigilhq/vigil/schemas"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
	"github.com/vigilhq/vigil/sim"
	"github.com/vigilhq/vigil/sim/sessionapi"
)

// TestFaults runs vigil (ingest and revoker, one process) over a steady
// stream of valid events, invalid ones and token thefts while faults hit
// it, then checks by query that nothing was lost or doubled: every valid
// event stored once, every invalid one dead-lettered once, one token-reuse
// anomaly per theft, one revocation per theft at the session API.
//
// The short version (make test) runs each fault once, in turn; with
// VIGIL_SOAK set to a duration (make soak: 10m) it runs random faults for
// that long, one every 15–25 s.
func TestFaults(t *testing.T) {
	soak, _ := time.ParseDuration(os.Getenv("VIGIL_SOAK"))
	r := newFaultRig(t)
	r.start()
	stop := r.produce(2_000, 2*time.Second)

	faults := []fault{
		{"kill -9 of vigil run, then a restart", r.killVigil},
		{"ClickHouse killed for 3 s, then restarted", r.killClickHouse},
		{"Kafka connections cut for 3 s", r.cutKafka},
		{"ClickHouse stalled (no bytes either way) for 5 s", r.stallClickHouse},
		{"session API failing and slow for 5 s", r.failSessionAPI},
		{"ClickHouse connections cut", r.cutClickHouse},
		{"kill -9 of vigil run during the recovery of another fault", r.killDuringRecovery},
	}
	var ran []string
	if soak > 0 {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		for end := time.Now().Add(soak); time.Now().Before(end); {
			f := faults[rng.IntN(len(faults))]
			r.steady(time.Duration(15+rng.IntN(10)) * time.Second)
			t.Logf("%s: %s", time.Now().Format(time.TimeOnly), f.name)
			f.do()
			ran = append(ran, f.name)
		}
	} else {
		for _, f := range faults {
			r.steady(3 * time.Second)
			t.Logf("%s: %s", time.Now().Format(time.TimeOnly), f.name)
			f.do()
			ran = append(ran, f.name)
		}
	}
	r.steady(2 * time.Second)
	stop()
	r.verify()
	t.Logf("%d faults (%s); %d valid events, %d invalid, %d thefts produced; all stored, dead-lettered, detected and revoked once",
		len(ran), strings.Join(ran, "; "), r.valid.Load(), r.invalid.Load(), r.thefts.Load())
}

type fault struct {
	name string
	do   func()
}

// faultRig is vigil run with everything it talks to under the test's
// control: kfake behind a listener whose connections can be cut,
// ClickHouse behind a proxy that can stall or cut, the simulated session
// API with fault injection.
type faultRig struct {
	t       *testing.T
	kafka   *cutListener
	brokers []string
	ch      *chserver.Server
	chProxy *proxy
	conn    driver.Conn
	db      string
	api     *sessionapi.Server
	target  *recordingTarget
	env     []string
	vigil   atomic.Pointer[proc]

	valid, invalid, thefts atomic.Int64
	families               sync.Map      // theft family id → true
	key                    pseudonym.Key // what vigil stores ids under (privacy.key_file); zero: clear
}

func newFaultRig(t *testing.T) *faultRig { return newRig(t, nil) }

// newRig is newFaultRig; with a ClickHouse cluster c, vigil is given every
// server's address (clickhouse.addr, in shard order) and clickhouse.cluster
// instead of one server behind a proxy, and the database is left for the
// test to migrate (vigil migrate --cluster).
func newRig(t *testing.T, c *chserver.Cluster) *faultRig {
	r := &faultRig{t: t}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.SeedTopics(4, "session-events"), kfake.SeedTopics(1, "vigil.dlq"), kfake.SeedTopics(1, "vigil.actions"),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			r.kafka = &cutListener{Listener: l, conns: map[net.Conn]struct{}{}}
			return r.kafka, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	r.brokers = cluster.ListenAddrs()
	r.db = testenv.Database(t)
	chEnv := []string{"VIGIL_CLICKHOUSE_DATABASE=" + r.db}
	if c == nil {
		r.ch = testenv.OwnClickHouse(t)
		r.chProxy = newProxy(t, r.ch.Addr())
		r.conn = testenv.Conn(t, r.ch)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := chschema.Migrate(ctx, r.conn, r.db); err != nil {
			t.Fatal(err)
		}
		chEnv = append(chEnv, "VIGIL_CLICKHOUSE_ADDR="+r.chProxy.Addr())
	} else {
		r.ch = c.Shards[0][0]
		r.conn = testenv.Conn(t, r.ch)
		chEnv = append(chEnv, "VIGIL_CLICKHOUSE_ADDR="+strings.Join(c.Addrs(), ","), "VIGIL_CLICKHOUSE_CLUSTER="+c.Name)
	}
	cfg := sessionapi.DefaultConfig()
	cfg.TimeoutDelay = 2 * time.Second
	r.target = &recordingTarget{seen: map[string]int{}}
	if r.api, err = sessionapi.New(cfg, r.target); err != nil {
		t.Fatal(err)
	}
	if err := r.api.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.api.Shutdown(context.Background()) })
	r.env = append(chEnv,
		"VIGIL_KAFKA_BROKERS="+strings.Join(r.brokers, ","),
		"VIGIL_CLICKHOUSE_READ_TIMEOUT=10s",
		// A killed member's partitions move after 6 s, not the default 30.
		"VIGIL_KAFKA_SESSION_TIMEOUT=6s", "VIGIL_KAFKA_REBALANCE_TIMEOUT=6s", "VIGIL_KAFKA_HEARTBEAT_INTERVAL=1s", "VIGIL_INGEST_DRAIN_TIMEOUT=3s",
		"VIGIL_INGEST_FLUSH_INTERVAL=100ms", "VIGIL_INGEST_RETRY_MAX=1s",
		"VIGIL_REVOKE_ADAPTER_KIND=http", "VIGIL_REVOKE_ADAPTER_URL=http://"+r.api.Addr(), "VIGIL_REVOKE_ADAPTER_ALLOW_HTTP=true",
		"VIGIL_REVOKE_RETRY_MAX=1s",
		// Every theft must be revoked: a soak makes hundreds in ten
		// minutes, past the default blast-radius cap of 200.
		"VIGIL_REVOKE_MAX_ACTIONS=100000",
	)
	return r
}

func (r *faultRig) start() {
	p := startVigil(r.t, r.env)
	r.vigil.Store(p)
	testenv.WaitFor(r.t, time.Minute, "vigil ready", func() (bool, string) {
		code, body := p.get("/readyz")
		return code == 200, body
	})
}

// produce sends perSecond messages a second (one in 50 invalid) and a
// token theft every theftEvery until the returned stop is called, which
// returns once everything is produced.
func (r *faultRig) produce(perSecond int, theftEvery time.Duration) (stop func()) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.DefaultProduceTopic("session-events"),
		kgo.ProducerLinger(5*time.Millisecond), kgo.RecordRetries(1_000_000), kgo.RequestTimeoutOverhead(5*time.Second))
	if err != nil {
		r.t.Fatal(err)
	}
	done, quit := make(chan struct{}), make(chan struct{})
	// Event time advances as fast as real time: a stream that ran ahead
	// would end up rejected as time_in_future after a few minutes.
	s := sim.NewStream(sim.StreamConfig{Seed: 11, Users: 5_000, Start: time.Now().UTC(), Step: time.Second / time.Duration(perSecond), InvalidEvery: 50})
	go func() {
		defer close(done)
		defer cl.Close()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		lastTheft := time.Now()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			recs := make([]*kgo.Record, 0, perSecond/20+3)
			var valid, invalid int64
			for range perSecond / 20 {
				m := s.Next()
				recs = append(recs, &kgo.Record{Key: m.Key, Value: m.Value})
				if m.Valid {
					valid++
				} else {
					invalid++
				}
			}
			if time.Since(lastTheft) >= theftEvery {
				lastTheft = time.Now()
				recs = append(recs, r.theft(int(r.thefts.Load()))...)
				valid += 3
			}
			// Synchronous: a record counts as produced once Kafka has it,
			// however long a cut keeps it waiting.
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				r.t.Errorf("produce: %v", err)
				return
			}
			if len(recs) > perSecond/20 {
				r.thefts.Add(1)
			}
			r.valid.Add(valid)
			r.invalid.Add(invalid)
		}
	}()
	return func() { close(quit); <-done }
}

// theft returns the three events of token theft n, with ids of its own.
func (r *faultRig) theft(n int) []*kgo.Record {
	created, rotation, replay := schemas.TokenTheft(time.Now().UTC())
	fam := "fam-th-" + strconv.Itoa(n)
	r.families.Store(fam, true)
	var out []*kgo.Record
	for i, e := range []*schemas.Event{&created, &rotation, &replay} {
		e.ID = fmt.Sprintf("th-%d-%d", n, i)
		e.FamilyID, e.SessionID, e.UserID = fam, "ses-th-"+strconv.Itoa(n), "usr-th-"+strconv.Itoa(n)
		for _, tok := range []*string{&e.TokenID, &e.ParentTokenID} {
			if *tok != "" {
				*tok = fam + "." + *tok
			}
		}
		out = append(out, &kgo.Record{Key: []byte(fam), Value: schemas.AppendJSON(nil, e)})
	}
	return out
}

// steady lets the stream flow for d.
func (r *faultRig) steady(d time.Duration) { <-time.After(d) }

func (r *faultRig) killVigil() {
	p := r.vigil.Load()
	_ = p.cmd.Process.Kill()
	<-p.done
	p.exited = true
	r.start()
}

func (r *faultRig) killClickHouse() {
	if err := r.ch.Kill(); err != nil {
		r.t.Fatal(err)
	}
	r.steady(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.ch.Restart(ctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *faultRig) cutKafka() {
	r.kafka.setCut(true)
	r.steady(3 * time.Second)
	r.kafka.setCut(false)
}

func (r *faultRig) stallClickHouse() {
	r.chProxy.stall(true)
	r.steady(5 * time.Second)
	r.chProxy.stall(false)
}

func (r *faultRig) cutClickHouse() { r.chProxy.cutAll() }

func (r *faultRig) failSessionAPI() {
	r.api.SetFaults(0.5, 0.2, 0.2)
	r.steady(5 * time.Second)
	r.api.SetFaults(0, 0, 0)
}

func (r *faultRig) killDuringRecovery() {
	r.kafka.setCut(true)
	r.chProxy.stall(true)
	r.steady(2 * time.Second)
	r.kafka.setCut(false)
	r.chProxy.stall(false)
	r.killVigil()
}

// verify waits for vigil to catch up and checks every count by query.
func (r *faultRig) verify() {
	t := r.t
	valid, invalid, thefts := r.valid.Load(), r.invalid.Load(), r.thefts.Load()
	q := func(query string) int64 {
		var n uint64
		if err := r.conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
			return -1
		}
		return int64(n)
	}
	db := r.db
	testenv.WaitFor(t, 3*time.Minute, "every event stored, every invalid one dead-lettered, every theft revoked", func() (bool, string) {
		ev := q("SELECT uniqExact(id) FROM " + db + ".events")
		dl := q("SELECT uniqExact(partition, offset) FROM " + db + ".dead_letters")
		rv := int64(r.target.families("fam-th-"))
		return ev == valid && dl == invalid && rv == thefts,
			fmt.Sprintf("events %d of %d, dead letters %d of %d, thefts revoked %d of %d", ev, valid, dl, invalid, rv, thefts)
	})
	// Once each: replays collapse in the tables; no subject revoked twice.
	if n := q("SELECT count() FROM " + db + ".events FINAL"); n != valid {
		t.Errorf("events FINAL: %d rows, want %d", n, valid)
	}
	if n := q("SELECT count() FROM " + db + ".dead_letters FINAL"); n != invalid {
		t.Errorf("dead_letters FINAL: %d rows, want %d", n, invalid)
	}
	var stored []string // the thefts' family ids as vigil stores them
	r.families.Range(func(k, _ any) bool {
		stored = append(stored, "'"+r.key.Of(k.(string))+"'")
		return true
	})
	in := "family_id IN (" + strings.Join(stored, ", ") + ")"
	if n := q("SELECT count() FROM (SELECT family_id FROM " + db + ".anomalies FINAL WHERE detector = 'token_reuse' AND " + in + " GROUP BY family_id HAVING count() = 1)"); n != thefts {
		t.Errorf("thefts with exactly one token_reuse anomaly: %d, want %d", n, thefts)
	}
	if n := q("SELECT count() FROM " + db + ".anomalies FINAL WHERE detector = 'token_reuse' AND " + in); n != thefts {
		t.Errorf("token_reuse anomalies of the thefts: %d, want %d", n, thefts)
	}
	for subject, n := range r.target.snapshot() {
		if n != 1 {
			t.Errorf("%s revoked %d times at the session API, want once", subject, n)
		}
	}
}

// recordingTarget is the session API's target: it counts each revoked
// subject (the API passes each idempotency key once).
type recordingTarget struct {
	mu   sync.Mutex
	seen map[string]int
}

func (rt *recordingTarget) Revoke(req sessionapi.Request, _ time.Time) (sessionapi.Outcome, bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	subject := req.Scope + ":" + req.FamilyID
	if req.Scope != "family" {
		subject = req.Scope + ":" + req.SessionID + req.UserID
	}
	rt.seen[subject]++
	return sessionapi.Revoked, true
}

func (rt *recordingTarget) families(prefix string) int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	n := 0
	for s := range rt.seen {
		if strings.HasPrefix(s, "family:"+prefix) {
			n++
		}
	}
	return n
}

func (rt *recordingTarget) snapshot() map[string]int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	m := make(map[string]int, len(rt.seen))
	for k, v := range rt.seen {
		m[k] = v
	}
	return m
}

// cutListener is a listener whose connections can all be cut at once, and
// which refuses new ones while cut: a broker whose network drops.
type cutListener struct {
	net.Listener
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func (l *cutListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.cut {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		return &trackedConn{Conn: c, l: l}, nil
	}
}

func (l *cutListener) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			c.Close()
		}
		clear(l.conns)
	}
}

type trackedConn struct {
	net.Conn
	l *cutListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// proxy forwards TCP connections to a target; it can stall them (bytes
// held in both directions) or cut them all.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	gate   chan struct{} // closed while bytes flow
	held   bool          // gate is open (not closed)
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, gate: make(chan struct{})}
	close(p.gate)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cutAll() })
	return p
}

// Addr is where clients connect.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a cut: close both ends
		}
	}
}

func (p *proxy) stall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case on && !p.held:
		p.gate, p.held = make(chan struct{}), true
	case !on && p.held:
		close(p.gate)
		p.held = false
	}
}

func (p *proxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// TestPseudonymizedClosedLoop: with privacy.key_file, no user, session or
// family id and no IP is stored in clear in any table, yet every theft is
// detected (one of them across a kill -9: the replay arrives after a
// restart rebuilt the detector state from the stored pseudonyms) and
// revoked at the session API with its clear family id, exactly once.
func TestPseudonymizedClosedLoop(t *testing.T) {
	key := "pseudonymization-key-" + strconv.Itoa(int(time.Now().UnixNano()))
	keyFile := filepath.Join(t.TempDir(), "pseudonym.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newFaultRig(t)
	r.key = pseudonym.Key(key)
	r.env = append(r.env, "VIGIL_PRIVACY_KEY_FILE="+keyFile)
	r.start()
	stop := r.produce(1_000, time.Second)
	r.steady(3 * time.Second)

	// A theft split by a crash: login and rotation, kill -9, the replay.
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.DefaultProduceTopic("session-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	split := r.theft(1_000_000)
	if err := cl.ProduceSync(context.Background(), split[:2]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fam := r.key.Of("fam-th-1000000")
	testenv.WaitFor(t, time.Minute, "the split theft's login and rotation stored under the family's pseudonym", func() (bool, string) {
		n := count(t, r.conn, "SELECT count() FROM "+r.db+".events WHERE family_id = '"+fam+"'")
		return n == 2, fmt.Sprintf("%d of 2", n)
	})
	r.killVigil()
	if err := cl.ProduceSync(context.Background(), split[2]).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.valid.Add(3)
	r.thefts.Add(1)
	r.steady(3 * time.Second)
	stop()
	r.verify()

	// Nothing in clear: every identifier column holds pseudonyms or nothing.
	clearIn := func(table string, cols ...string) {
		t.Helper()
		var conds []string
		for _, c := range cols {
			conds = append(conds, fmt.Sprintf("(%s != '' AND NOT startsWith(%s, 'ps_'))", c, c))
		}
		n := count(t, r.conn, "SELECT count() FROM "+r.db+"."+table+" WHERE "+strings.Join(conds, " OR "))
		total := count(t, r.conn, "SELECT count() FROM "+r.db+"."+table)
		if n != 0 || total == 0 {
			t.Errorf("%s: %d of %d rows hold a clear %s", table, n, total, strings.Join(cols, ", "))
		}
	}
	clearIn("events", "user_id", "session_id", "family_id", "ip")
	clearIn("event_subjects", "subject")
	clearIn("anomalies", "user_id", "session_id", "family_id", "ip")
	clearIn("actions", "user_id", "session_id", "family_id", "ip")
	if n := r.target.families("fam-th-1000000"); n != 1 {
		t.Errorf("the theft split by the crash: revoked %d times in clear at the session API, want once", n)
	}
	out, _, err := run(t, map[string]string{"VIGIL_PRIVACY_KEY_FILE": keyFile}, "pseudonym", "fam-th-1000000")
	if err != nil || strings.TrimSpace(out) != fam {
		t.Errorf("vigil pseudonym: %q %v, want %s", out, err, fam)
	}
}

// TestThreeProcesses: three `vigil run` processes share the topic's
// partitions through their consumer group while traffic flows; one is
// killed -9 and another added mid-stream, and a token theft is split
// across a handoff: its login and rotation are judged by one process, which
// is then killed, and the replay reaches the process that took the
// partition over (its detector state rebuilt from ClickHouse). Nothing is
// lost or doubled: every event stored once, every theft detected once and
// revoked once.
func TestThreeProcesses(t *testing.T) {
	r := newFaultRig(t)
	var procs []*proc
	start := func() {
		p := startVigil(t, r.env)
		procs = append(procs, p)
		testenv.WaitFor(t, time.Minute, "a new vigil ready", func() (bool, string) {
			code, body := p.get("/readyz")
			return code == 200, body
		})
	}
	for range 3 {
		start()
	}
	r.vigil.Store(procs[0])
	// owners returns which live processes own each partition (their
	// buffer gauge is there only while they do).
	owners := func() map[string][]int {
		m := map[string][]int{}
		for i, p := range procs {
			if p.exited {
				continue
			}
			_, metrics := p.get("/metrics")
			for _, part := range []string{"0", "1", "2", "3"} {
				if strings.Contains(metrics, `vigil_ingest_buffer_fill_ratio{partition="`+part+`"}`) {
					m[part] = append(m[part], i)
				}
			}
		}
		return m
	}
	settled := func(what string) {
		t.Helper()
		testenv.WaitFor(t, time.Minute, what, func() (bool, string) {
			m := owners()
			for _, part := range []string{"0", "1", "2", "3"} {
				if len(m[part]) != 1 {
					return false, fmt.Sprint(m)
				}
			}
			return true, ""
		})
	}
	settled("each partition owned by exactly one of the three")
	stop := r.produce(1_500, 2*time.Second)
	r.steady(3 * time.Second)

	// Split a theft: login and rotation now, on the partition kgo picks for its family.
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.DefaultProduceTopic("session-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	split := r.theft(2_000_000)
	res := cl.ProduceSync(context.Background(), split[:2]...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	partition := strconv.Itoa(int(res[0].Record.Partition))
	testenv.WaitFor(t, time.Minute, "the split theft's login and rotation stored", func() (bool, string) {
		n := count(t, r.conn, "SELECT count() FROM "+r.db+".events WHERE family_id = 'fam-th-2000000'")
		return n == 2, fmt.Sprintf("%d of 2", n)
	})
	settled("the assignment settled")
	owner := owners()[partition][0]
	t.Logf("partition %s is owned by process %d: killing it", partition, owner)
	_ = procs[owner].cmd.Process.Kill()
	<-procs[owner].done
	procs[owner].exited = true
	survivors := slices.Delete(slices.Clone(procs), owner, owner+1)
	settled("partition " + partition + " taken over by a survivor")
	if o := owners()[partition]; len(o) != 1 || !slices.Contains(survivors, procs[o[0]]) {
		t.Fatalf("partition %s owned by %v after the kill", partition, o)
	}
	if err := cl.ProduceSync(context.Background(), split[2]).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.valid.Add(3)
	r.thefts.Add(1)
	r.steady(2 * time.Second)
	start() // a fourth joins mid-stream
	r.steady(3 * time.Second)
	stop()
	r.verify()
	if n := r.target.families("fam-th-2000000"); n != 1 {
		t.Errorf("the theft split across the handoff: revoked %d times, want once", n)
	}
}
