// Package bench measures vigil against the tools a user would otherwise
// pick to get session events from Kafka into ClickHouse, on the same
// machine, the same generated events and the same table layout: the
// numbers `vigil bench` prints.
//
// A contender is started, then Measure polls the events table until every
// event is stored, and reads the CPU time and peak memory of the processes
// doing the work and of the ClickHouse server. Nothing here keeps state
// between calls; a Measure call is not safe to run concurrently with
// another on the same server (the server's peak memory is reset).
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Throughput is one contender's measured ingest.
type Throughput struct {
	// Name says which contender, e.g. "vigil".
	Name string `json:"name"`
	// Skipped, when set, says why the contender did not run.
	Skipped string `json:"skipped,omitempty"`
	// Events is how many events were stored.
	Events int `json:"events"`
	// Lost is how many of the topic's events the contender never stored
	// (it stopped making progress for Run.Stall with these missing).
	Lost int `json:"lost,omitempty"`
	// Wall is from the contender's start until every event and its
	// timeline rows were stored.
	Wall time.Duration `json:"wall_ns"`
	// EventsPerSec is Events over Wall.
	EventsPerSec float64 `json:"events_per_s"`
	// CPUPerMillion is the CPU time (user and system) of the contender's
	// own processes plus the ClickHouse server's, per million events.
	CPUPerMillion time.Duration `json:"cpu_per_million_ns"`
	// ClientCPU and ServerCPU split it: the contender's processes and the
	// ClickHouse server, over the whole run.
	ClientCPU time.Duration `json:"client_cpu_ns"`
	ServerCPU time.Duration `json:"server_cpu_ns"`
	// PeakRSS is the largest resident set of the contender's own
	// processes (0 for the Kafka engine, which runs inside the server);
	// ServerPeakRSS the server's over the run.
	PeakRSS       int64 `json:"peak_rss_bytes"`
	ServerPeakRSS int64 `json:"server_peak_rss_bytes"`
	// StoredBytesPerEvent is the size on disk of the events and timeline
	// tables' active parts (compressed) per event, when measured.
	StoredBytesPerEvent float64 `json:"stored_bytes_per_event,omitempty"`
	// Notes says what the contender did and what bounds it.
	Notes string `json:"notes,omitempty"`
	// Runs lists the events/s of every run, in order, when there were
	// several; the other fields are the median run's.
	Runs []float64 `json:"runs_events_per_s,omitempty"`
}

// Median returns the run with the median events/s (the lower middle of
// an even count), with every run's events/s in Runs. A skipped contender
// is returned as it is.
func Median(runs []Throughput) Throughput {
	if len(runs) == 0 {
		return Throughput{}
	}
	if runs[0].Skipped != "" || len(runs) == 1 {
		return runs[0]
	}
	rates := make([]float64, len(runs))
	idx := make([]int, len(runs))
	for i, t := range runs {
		rates[i], idx[i] = t.EventsPerSec, i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rates[idx[a]] < rates[idx[b]] })
	m := runs[idx[(len(runs)-1)/2]]
	m.Runs = rates
	return m
}

// Run is one measurement in progress: Start, start the contender, Wait.
type Run struct {
	conn      driver.Conn
	db        string
	n         int
	subjects  uint64
	serverPID int
	server0   Usage
	start     time.Time

	// Stall ends Wait once some events are stored and neither table has
	// grown for this long: the contender is taken to have lost the rest,
	// and its rate is over the time until its last row. 0 waits for every
	// row.
	Stall time.Duration
}

// Start begins measuring a contender that will store n events into db's
// events table and subjects rows into its event_subjects table (0: do
// not wait for them) through conn; serverPID, when not 0, is the local
// ClickHouse server whose CPU and peak memory are counted. Call it just
// before starting the contender.
func Start(conn driver.Conn, db string, n int, subjects uint64, serverPID int) *Run {
	r := &Run{conn: conn, db: db, n: n, subjects: subjects, serverPID: serverPID}
	if serverPID > 0 {
		_ = ResetPeakRSS(serverPID)
		r.server0, _ = ReadUsage(serverPID)
	}
	r.start = time.Now()
	return r
}

// Wait polls the tables until they hold every row (or the contender
// stalls, see Stall), ctx ends or a contender process fails (failed,
// polled each round, returns its error), and fills t's timing and server
// figures: events/s is the events stored over the time from Start until
// the last row (of either table) is stored, so every contender's
// start-up and tail count.
func (r *Run) Wait(ctx context.Context, t *Throughput, failed func() error) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	q := "SELECT (SELECT count() FROM " + r.db + ".events), (SELECT count() FROM " + r.db + ".event_subjects)"
	var lastEvents, lastSubjects uint64
	lastChange := r.start
	for {
		var events, subjects uint64
		if err := r.conn.QueryRow(ctx, q).Scan(&events, &subjects); err != nil {
			return fmt.Errorf("bench: %s: count (%d of %d events stored at the last count): %w", t.Name, lastEvents, r.n, err)
		}
		now := time.Now()
		if events >= uint64(r.n) && subjects >= r.subjects {
			t.Events, t.Wall = int(events), now.Sub(r.start)
			break
		}
		if events != lastEvents || subjects != lastSubjects {
			lastEvents, lastSubjects, lastChange = events, subjects, now
		} else if r.Stall > 0 && events > 0 && now.Sub(lastChange) >= r.Stall {
			t.Events, t.Lost, t.Wall = int(events), r.n-int(events), lastChange.Sub(r.start)
			break
		}
		if failed != nil {
			if err := failed(); err != nil {
				return fmt.Errorf("bench: %s stopped with %d of %d events stored: %w", t.Name, events, r.n, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: %s: %d of %d events and %d of %d timeline rows stored: %w", t.Name, events, r.n, subjects, r.subjects, ctx.Err())
		case <-tick.C:
		}
	}
	t.EventsPerSec = float64(t.Events) / t.Wall.Seconds()
	if r.serverPID > 0 {
		if u, err := ReadUsage(r.serverPID); err == nil {
			t.ServerCPU, t.ServerPeakRSS = u.CPU-r.server0.CPU, u.PeakRSS
		}
	}
	return nil
}

// StoredBytes sums the on-disk bytes of db's events and event_subjects
// active parts.
func StoredBytes(ctx context.Context, conn driver.Conn, db string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = '"+db+"' AND table IN ('events', 'event_subjects')").Scan(&n)
	return n, err
}

// Subjects counts db's event_subjects rows: what the other contenders
// must reach once vigil has stored the topic.
func Subjects(ctx context.Context, conn driver.Conn, db string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".event_subjects").Scan(&n)
	return n, err
}

// Finish adds the contender's own CPU time and peak memory and derives
// the CPU per million events.
func (t *Throughput) Finish(client Usage) {
	t.ClientCPU, t.PeakRSS = client.CPU, client.PeakRSS
	if t.Events > 0 {
		t.CPUPerMillion = (t.ClientCPU + t.ServerCPU) * 1_000_000 / time.Duration(t.Events)
	}
}

// Latency is the replay-to-revocation measurement.
type Latency struct {
	// Thefts is how many replayed tokens were timed; Background the
	// events/s of other traffic meanwhile.
	Thefts     int     `json:"thefts"`
	Background float64 `json:"background_events_per_s"`
	// P50, P99 and Max are from the replay handed to Kafka to the
	// revocation arriving at the session API.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// Memory is the detector state measurement.
type Memory struct {
	// Families is how many families were tracked; BytesPerFamily the heap
	// the stream detectors' state holds per family.
	Families       int     `json:"families"`
	BytesPerFamily float64 `json:"bytes_per_family"`
}

// Report is everything `vigil bench` measured.
type Report struct {
	// Machine describes where it ran.
	Machine string `json:"machine"`
	// Events and Partitions describe the generated topic; EventBytes its
	// average message size.
	Events     int `json:"events"`
	Partitions int `json:"partitions"`
	// Runs is how many rounds the throughput contenders ran.
	Runs       int     `json:"runs,omitempty"`
	EventBytes float64 `json:"event_bytes"`
	// Throughput has one row per contender, vigil first.
	Throughput []Throughput `json:"throughput"`
	// Ratios are vigil's events/s over each other contender's.
	Ratios map[string]float64 `json:"ratios"`
	// Latency and Memory are the later parts; nil when skipped.
	Latency *Latency `json:"latency,omitempty"`
	Memory  *Memory  `json:"memory,omitempty"`
}

// ComputeRatios fills Ratios from Throughput.
func (r *Report) ComputeRatios() {
	r.Ratios = map[string]float64{}
	if len(r.Throughput) == 0 || r.Throughput[0].EventsPerSec == 0 {
		return
	}
	v := r.Throughput[0].EventsPerSec
	for _, t := range r.Throughput[1:] {
		if t.Skipped == "" && t.EventsPerSec > 0 {
			r.Ratios[t.Name] = v / t.EventsPerSec
		}
	}
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for people.
func (r Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "vigil bench: %d events (%.0f bytes each on average, %d partitions) on %s\n", r.Events, r.EventBytes, r.Partitions, r.Machine)
	if r.Runs > 1 {
		fmt.Fprintf(w, "median of %d runs each, the contenders taking turns\n", r.Runs)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTENDER\tEVENTS/S\tvigil ×\tLOST\tCPU s/M EVENTS\t(CLIENT + SERVER)\tPEAK RSS\tSERVER PEAK RSS\tWALL\t")
	for _, t := range r.Throughput {
		if t.Skipped != "" {
			fmt.Fprintf(tw, "%s\t-\t\t\t\t\t\t\t\t\n", t.Name)
			continue
		}
		ratio := "1.00"
		if t.Name != r.Throughput[0].Name {
			ratio = fmt.Sprintf("%.2f", r.Ratios[t.Name])
		}
		lost := "0"
		if t.Lost > 0 {
			lost = fmt.Sprintf("%d", t.Lost)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%.2f\t(%.2f + %.2f)\t%s\t%s\t%s\t\n", t.Name, t.EventsPerSec, ratio, lost,
			t.CPUPerMillion.Seconds(), perMillion(t.ClientCPU, t.Events), perMillion(t.ServerCPU, t.Events),
			mib(t.PeakRSS), mib(t.ServerPeakRSS), t.Wall.Round(10*time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range r.Throughput {
		if t.Skipped != "" {
			fmt.Fprintf(w, "  %s: skipped: %s\n", t.Name, t.Skipped)
		}
		if t.StoredBytesPerEvent > 0 {
			fmt.Fprintf(w, "  %s: %.0f bytes per event on disk in ClickHouse (events and timeline rows, compressed)\n", t.Name, t.StoredBytesPerEvent)
		}
		if t.Notes != "" && t.Skipped == "" {
			fmt.Fprintf(w, "  %s: %s", t.Name, t.Notes)
			if len(t.Runs) > 1 {
				rates := make([]string, len(t.Runs))
				for i, v := range t.Runs {
					rates[i] = fmt.Sprintf("%.0f", v)
				}
				fmt.Fprintf(w, "; runs: %s events/s", strings.Join(rates, ", "))
			}
			fmt.Fprintln(w)
		}
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "\nreplay → revocation (%d thefts, %.0f events/s background): p50 %s, p99 %s, max %s\n",
			l.Thefts, l.Background, ms(l.P50), ms(l.P99), ms(l.Max))
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "detector state: %.1f bytes per tracked family at %d families\n", m.BytesPerFamily, m.Families)
	}
	return nil
}

func perMillion(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return d.Seconds() * 1e6 / float64(n)
}

func mib(b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

func ms(d time.Duration) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)), ".0") + " ms"
}
