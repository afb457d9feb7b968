package detect

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// maxEndsPerQuery bounds how many window ends one rule query judges, so a
// long backtest or catch-up is read in slices.
const maxEndsPerQuery = 720

// WindowOptions wires the window detectors to ClickHouse.
type WindowOptions struct {
	// Conn reads the events (and, for Seed, the anomalies) tables.
	Conn driver.Conn
	// Database holds the tables.
	Database string
	// Metrics counts what the window detectors raise; nil creates unregistered metrics.
	Metrics *Metrics
	// Now is the wall clock of detected_at; nil means time.Now.
	Now func() time.Time
}

// Windows judges the window detectors' rules over the stored events. It
// keeps each subject's open episode (a subject that keeps firing is
// raised once per realert_after) and the baselines' past buckets, so
// windows must be judged in order: each Evaluate call continues where the
// last one ended. A Windows is not safe for concurrent use.
//
// Every judgement depends only on the stored events (never on when it
// runs), so judging the same windows over the same events, live or in a
// backtest, raises the same anomalies with the same ids.
type Windows struct {
	cfg     Config
	o       WindowOptions
	rules   []*windowRule
	filter  string
	step    int64
	last    int64                       // end of the last window judged, unix seconds; 0 before the first
	open    map[string]int64            // episode key → end of the last window that fired
	covered map[string]map[string]int64 // many-source rule and tenant → address → end of the last window that listed it
	buckets map[*windowRule]*bucketCache
	first   int64 // unix seconds of the earliest stored event; 0 while unknown
}

// bucketCache holds a baseline rule's past bucket values: bucket end →
// tenant → first measure. A fetched bucket with no row for a tenant is 0.
type bucketCache struct {
	vals map[int64]map[string]float64
}

// NewWindows returns the window detectors of cfg, or nil when none is enabled.
func NewWindows(cfg Config, o WindowOptions) (*Windows, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rules := cfg.windowRules()
	if len(rules) == 0 {
		return nil, nil
	}
	if o.Conn == nil || o.Database == "" {
		return nil, errors.New("detect: window detectors need a ClickHouse connection and database")
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Windows{cfg: cfg, o: o, rules: rules, filter: allowFilter(cfg.Window), step: int64(cfg.Window.Interval / time.Second),
		open: map[string]int64{}, covered: map[string]map[string]int64{}, buckets: map[*windowRule]*bucketCache{}}
	for _, r := range rules {
		if r.baseline {
			w.buckets[r] = &bucketCache{vals: map[int64]map[string]float64{}}
		}
	}
	return w, nil
}

// reset forgets the judged windows and open episodes (the runner lost,
// then regained, the election); the baselines' buckets stay valid.
func (w *Windows) reset() {
	w.last = 0
	clear(w.open)
	clear(w.covered)
}

// Last returns the end of the last window judged (zero before the first).
func (w *Windows) Last() time.Time {
	if w.last == 0 {
		return time.Time{}
	}
	return time.Unix(w.last, 0).UTC()
}

// floor aligns t down to the grid.
func (w *Windows) floor(t time.Time) int64 {
	s := t.Unix()
	return s - ((s%w.step)+w.step)%w.step
}

// Evaluate judges every window ending on the grid after the last one
// judged (after from, aligned, on the first call) up to to, in order, and
// returns the anomalies raised. On error it returns the anomalies of the
// windows judged before it; the next call resumes after them.
func (w *Windows) Evaluate(ctx context.Context, from, to time.Time) ([]Anomaly, error) {
	lo := w.last
	if lo == 0 {
		if from.IsZero() {
			return nil, errors.New("detect: the first Evaluate needs a start time")
		}
		lo = w.floor(from)
	}
	hi := w.floor(to)
	var out []Anomaly
	for lo < hi {
		next := min(hi, lo+maxEndsPerQuery*w.step)
		as, err := w.evaluate(ctx, lo, next)
		if err != nil {
			return out, err
		}
		out = append(out, as...)
		lo = next
	}
	return out, nil
}

// evaluate judges the windows ending in (lo, hi].
func (w *Windows) evaluate(ctx context.Context, lo, hi int64) ([]Anomaly, error) {
	if w.first == 0 {
		if err := w.loadFirst(ctx); err != nil {
			return nil, err
		}
	}
	rows := make([][]windowRow, len(w.rules))
	for i, r := range w.rules {
		q := windowQuery{db: w.o.Database, from: lo, to: hi, step: w.step, window: int64(r.window / time.Second), filter: w.filter}
		rs, err := w.query(ctx, r.sql(q))
		if err != nil {
			return nil, fmt.Errorf("detect: %s/%s: %w", r.detector, r.name, err)
		}
		if r.baseline {
			if err := w.fetchBuckets(ctx, r, lo, hi); err != nil {
				return nil, fmt.Errorf("detect: %s/%s baseline: %w", r.detector, r.name, err)
			}
		}
		slices.SortFunc(rs, func(a, b windowRow) int {
			return cmp.Or(cmp.Compare(a.end, b.end), cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.user, b.user),
				cmp.Compare(a.family, b.family), cmp.Compare(a.ip, b.ip))
		})
		rows[i] = rs
	}
	// Everything is read: judge, window by window, the rules in order.
	type ref struct{ rule, row int }
	var order []ref
	for i := range rows {
		for j := range rows[i] {
			order = append(order, ref{i, j})
		}
	}
	slices.SortStableFunc(order, func(a, b ref) int {
		return cmp.Or(cmp.Compare(rows[a.rule][a.row].end, rows[b.rule][b.row].end), cmp.Compare(a.rule, b.rule))
	})
	now := w.o.Now()
	realert := int64(w.cfg.Window.RealertAfter / time.Second)
	var out []Anomaly
	for _, o := range order {
		r, row := w.rules[o.rule], &rows[o.rule][o.row]
		var b *Baseline
		if r.baseline {
			bl := w.baselineOf(r, row.end, row.tenant)
			b = &bl
		}
		v, fire := r.judge(row, b)
		if !fire {
			if b != nil {
				w.ebb(r, row, b, realert)
			}
			continue
		}
		if r.coveredBy != "" {
			if at, ok := w.covered[coveredKey(r.detector, r.coveredBy, row.tenant)][row.ip]; ok && row.end-at <= realert {
				w.o.Metrics.Suppressed.WithLabelValues(r.detector).Inc()
				continue
			}
		}
		if len(v.sources) > 0 {
			ck := coveredKey(r.detector, r.name, row.tenant)
			if w.covered[ck] == nil {
				w.covered[ck] = map[string]int64{}
			}
			for _, ip := range v.sources {
				w.covered[ck][ip] = row.end
			}
		}
		key := episodeKey(r, v.kind, row.tenant, r.key(row))
		if last, ok := w.open[key]; ok && row.end-last <= realert {
			w.open[key] = max(last, row.end) // a seeded episode may end later than a replayed window
			w.o.Metrics.Suppressed.WithLabelValues(r.detector).Inc()
			continue
		}
		w.open[key] = row.end
		out = append(out, w.anomaly(r, row, v, now))
	}
	for k, m := range w.covered {
		for ip, at := range m {
			if hi-at > realert {
				delete(m, ip)
			}
		}
		if len(m) == 0 {
			delete(w.covered, k)
		}
	}
	for k, last := range w.open {
		if hi-last > realert {
			delete(w.open, k)
		}
	}
	w.pruneBuckets(hi)
	w.last = hi
	slices.SortFunc(out, func(a, b Anomaly) int {
		return cmp.Or(a.WindowEnd.Compare(b.WindowEnd), cmp.Compare(a.Detector, b.Detector), cmp.Compare(a.ID, b.ID))
	})
	for _, a := range out {
		w.o.Metrics.Anomalies.WithLabelValues(a.Detector, a.Kind, a.Severity.String(), fmt.Sprint(a.Shadow)).Inc()
	}
	return out, nil
}

// ebb handles a fleet-wide row that does not fire while its episode is
// open: at or above halfway from the median to the threshold (with
// history) the storm is ebbing and the episode stays open; below that it
// is over at once, so the next burst is a new incident.
func (w *Windows) ebb(r *windowRule, row *windowRow, b *Baseline, realert int64) {
	key := episodeKey(r, r.kind, row.tenant, r.key(row))
	last, ok := w.open[key]
	switch {
	case !ok:
	case !b.Missing && row.m[0] >= (b.Median+b.Threshold)/2 && row.end-last <= realert:
		w.open[key] = max(last, row.end)
	default:
		delete(w.open, key)
	}
}

// coveredKey names the addresses a many-source rule's findings in a tenant cover.
func coveredKey(detector, rule, tenant string) string {
	return detector + "\x00" + rule + "\x00" + tenant
}

// episodeKey identifies a subject's episode: the rule, the kind it found,
// the tenant and the rule's subject.
func episodeKey(r *windowRule, kind, tenant string, subject []string) string {
	return r.detector + "\x00" + r.name + "\x00" + kind + "\x00" + tenant + "\x00" + strings.Join(subject, "\x00")
}

func (w *Windows) anomaly(r *windowRule, row *windowRow, v verdict, now time.Time) Anomaly {
	start := time.Unix(row.end-int64(r.window/time.Second), 0).UTC()
	v.evidence["rule"] = r.name
	v.evidence["window"] = r.window.String()
	ev, _ := json.Marshal(v.evidence)
	firstNS := row.firstNS
	if v.firstNS != 0 {
		firstNS = v.firstNS
	}
	first := time.Unix(0, firstNS).UTC()
	if firstNS == 0 {
		first = start
	}
	return Anomaly{
		ID:       AnomalyID(r.detector, append([]string{r.name, v.kind, row.tenant}, r.key(row)...), start),
		Detector: r.detector, Kind: v.kind, Severity: v.severity, Shadow: r.shadow,
		Tenant: row.tenant, UserID: row.user, SessionID: row.session, FamilyID: row.family, IP: row.ip,
		Evidence: string(ev), FirstEventTime: first, DetectedAt: now,
		WindowStart: start, WindowEnd: time.Unix(row.end, 0).UTC(), Partition: -1, Offset: -1,
	}
}

func (w *Windows) query(ctx context.Context, sql string) ([]windowRow, error) {
	rows, err := w.o.Conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []windowRow
	for rows.Next() {
		var r windowRow
		var end uint32
		if err := rows.Scan(&end, &r.tenant, &r.user, &r.session, &r.family, &r.ip, &r.firstNS, &r.m, &r.info); err != nil {
			return nil, err
		}
		r.end = int64(end)
		out = append(out, r)
	}
	return out, rows.Err()
}

// loadFirst finds the earliest stored event: baseline buckets before it
// are missing history, not quiet ones.
func (w *Windows) loadFirst(ctx context.Context) error {
	var t time.Time
	var n uint64
	if err := w.o.Conn.QueryRow(ctx, "SELECT min(time), count() FROM "+w.o.Database+".events").Scan(&t, &n); err != nil {
		return fmt.Errorf("detect: earliest event: %w", err)
	}
	if n > 0 {
		w.first = t.Unix()
	}
	return nil
}

// bucketEnds lists the ends of the past buckets a window ending at end is
// judged against: the recent ones right before the window and the same
// hour (±30 min) on earlier days, all before the window starts and none
// starting before the earliest stored event.
func (w *Windows) bucketEnds(r *windowRule, end int64) []int64 {
	L := int64(r.window / time.Second)
	anchor := end - L
	anchor -= ((anchor % L) + L) % L
	var out []int64
	keep := func(b int64) {
		if w.first != 0 && b-L >= w.first {
			out = append(out, b)
		}
	}
	bc := w.cfg.Window.Baseline
	for b := anchor; b > anchor-int64(bc.Recent/time.Second); b -= L {
		keep(b)
	}
	for d := int64(1); d <= int64(bc.Days); d++ {
		c := anchor - d*86400
		first := c - 1800
		first += ((L-first%L)%L + L) % L // up to the bucket grid
		for b := first; b < c+1800; b += L {
			keep(b)
		}
	}
	return out
}

// fetchBuckets reads the past buckets the windows ending in (lo, hi] need
// and the cache lacks, in runs of consecutive buckets.
func (w *Windows) fetchBuckets(ctx context.Context, r *windowRule, lo, hi int64) error {
	bc := w.buckets[r]
	need := map[int64]bool{}
	for e := lo + w.step; e <= hi; e += w.step {
		for _, b := range w.bucketEnds(r, e) {
			if _, ok := bc.vals[b]; !ok {
				need[b] = true
			}
		}
	}
	ends := make([]int64, 0, len(need))
	for b := range need {
		ends = append(ends, b)
	}
	slices.Sort(ends)
	L := int64(r.window / time.Second)
	for i := 0; i < len(ends); {
		j := i + 1
		for j < len(ends) && ends[j] == ends[j-1]+L && j-i < maxEndsPerQuery {
			j++
		}
		q := windowQuery{db: w.o.Database, from: ends[i] - L, to: ends[j-1], step: L, window: L, filter: w.filter}
		rows, err := w.query(ctx, r.sql(q))
		if err != nil {
			return err
		}
		for _, b := range ends[i:j] {
			bc.vals[b] = map[string]float64{}
		}
		for _, row := range rows {
			if m, ok := bc.vals[row.end]; ok {
				m[row.tenant] = row.m[0]
			}
		}
		i = j
	}
	return nil
}

func (w *Windows) baselineOf(r *windowRule, end int64, tenant string) Baseline {
	bc := w.buckets[r]
	ends := w.bucketEnds(r, end)
	samples := make([]float64, 0, len(ends))
	for _, b := range ends {
		samples = append(samples, bc.vals[b][tenant])
	}
	return w.cfg.Window.Baseline.Judge(samples, r.floor)
}

// pruneBuckets forgets buckets no later window can need.
func (w *Windows) pruneBuckets(hi int64) {
	oldest := hi - int64(w.cfg.Window.Baseline.Days)*86400 - 1800 - int64(w.cfg.Window.Baseline.Recent/time.Second) - 2*int64(maxRuleWindow/time.Second)
	for _, bc := range w.buckets {
		for b := range bc.vals {
			if b < oldest {
				delete(bc.vals, b)
			}
		}
	}
}

// Seed reopens the episodes of the anomalies the window detectors raised
// with windows ending since since (a runner taking over after a restart or
// a rebalance), and returns the earliest such window end (zero if none):
// judging from there brings the episodes' state up to date.
func (w *Windows) Seed(ctx context.Context, since time.Time) (time.Time, error) {
	rows, err := w.o.Conn.Query(ctx, fmt.Sprintf(`SELECT detector, kind, evidence, tenant, user_id, family_id, ip, toUInt32(window_end)
FROM %s.anomalies WHERE detector IN ('%s', '%s') AND window_end >= toDateTime(%d)`, w.o.Database, LoginStorm, SessionChurn, since.Unix()))
	if err != nil {
		return time.Time{}, fmt.Errorf("detect: seed window episodes: %w", err)
	}
	defer rows.Close()
	var earliest int64
	for rows.Next() {
		var det, kind, evidence string
		var row windowRow
		var end uint32
		if err := rows.Scan(&det, &kind, &evidence, &row.tenant, &row.user, &row.family, &row.ip, &end); err != nil {
			return time.Time{}, fmt.Errorf("detect: seed window episodes: %w", err)
		}
		var e struct {
			Rule string `json:"rule"`
		}
		_ = json.Unmarshal([]byte(evidence), &e)
		for _, r := range w.rules {
			if r.detector == det && r.name == e.Rule {
				k := episodeKey(r, kind, row.tenant, r.key(&row))
				w.open[k] = max(w.open[k], int64(end))
				if earliest == 0 || int64(end) < earliest {
					earliest = int64(end)
				}
			}
		}
	}
	if err := rows.Err(); err != nil || earliest == 0 {
		return time.Time{}, err
	}
	// Start judging one step before the earliest, so its window is judged
	// again (and suppressed) and the episode's state is rebuilt from there.
	return time.Unix(earliest-w.step, 0).UTC(), nil
}

// Known returns which of ids the anomalies table holds.
func (w *Windows) Known(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for i := 0; i < len(ids); i += 1000 {
		rows, err := w.o.Conn.Query(ctx, "SELECT DISTINCT id FROM "+w.o.Database+".anomalies WHERE has(?, id)", ids[i:min(i+1000, len(ids))])
		if err != nil {
			return nil, fmt.Errorf("detect: read anomalies: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("detect: read anomalies: %w", err)
			}
			out[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("detect: read anomalies: %w", err)
		}
	}
	return out, nil
}

// PartitionTimes reads each events partition's newest stored event time,
// looking at events from since on (zero: the newest day present).
func PartitionTimes(ctx context.Context, conn driver.Conn, db string, since time.Time) (map[int32]time.Time, error) {
	cond := fmt.Sprintf("time >= toDateTime(%d)", since.Unix())
	if since.IsZero() {
		cond = "toDate(time) >= (SELECT max(toDate(time)) FROM " + db + ".events) - 1"
	}
	rows, err := conn.Query(ctx, "SELECT kafka_partition, max(time_ns) FROM "+db+".events WHERE "+cond+" GROUP BY kafka_partition")
	if err != nil {
		return nil, fmt.Errorf("detect: partition times: %w", err)
	}
	defer rows.Close()
	out := map[int32]time.Time{}
	for rows.Next() {
		var p uint32
		var ns int64
		if err := rows.Scan(&p, &ns); err != nil {
			return nil, fmt.Errorf("detect: partition times: %w", err)
		}
		out[int32(p)] = time.Unix(0, ns).UTC()
	}
	return out, rows.Err()
}

// logWindowErr logs a failed round once per distinct error.
func logWindowErr(log *slog.Logger, last *string, err error) {
	if s := err.Error(); s != *last {
		log.Error("window detectors: round failed, retrying", "err", err)
		*last = s
	}
}
