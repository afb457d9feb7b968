package postmortem

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/schemas/queries"
)

// Kinds are the subject kinds a timeline can follow.
var Kinds = []string{"session", "family", "user", "ip"}

// TimelineOptions says whose timeline to build and over which window.
type TimelineOptions struct {
	// Kind is session, family, user or ip; Subject is the id or address.
	Kind, Subject string
	// From and To bound the window (inclusive).
	From, To time.Time
	// Gap is the silence after which the output marks a gap; 0 means 10m.
	Gap time.Duration
}

// Entry is one line of a timeline: an event, an anomaly or an action.
type Entry struct {
	Time time.Time `json:"time"`
	// TimeNS is the time in Unix nanoseconds (the order of the timeline).
	TimeNS int64 `json:"time_ns"`
	// Source is event, anomaly or action.
	Source string `json:"source"`
	// What is the event type, detector/kind, or action and scope.
	What string `json:"what"`
	// Result is the event's outcome, the anomaly's severity, or the
	// action's status; Reason the event's reason, "shadow", or the
	// guardrail.
	Result string `json:"result"`
	Reason string `json:"reason"`
	// The subject and client of the line.
	SessionID     string `json:"session_id"`
	FamilyID      string `json:"family_id"`
	UserID        string `json:"user_id"`
	IP            string `json:"ip"`
	Country       string `json:"country"`
	ASN           string `json:"asn"`
	TokenID       string `json:"token_id"`
	ParentTokenID string `json:"parent_token_id"`
	DeviceID      string `json:"device_id"`
	UserAgent     string `json:"user_agent"`
	// Detail is the anomaly's evidence or the action's rule, HTTP status
	// and time to revoke.
	Detail string `json:"detail"`
	// ID is the event, anomaly or action id.
	ID string `json:"id"`
	// SincePrevious is the time since the previous line; GapBefore is set
	// when it is at least the options' Gap.
	SincePrevious time.Duration `json:"since_previous_ns"`
	GapBefore     bool          `json:"gap_before"`
	// Reuse classifies a refresh that presented an already exchanged
	// token: "theft: <kind>" when it is the offending event of a
	// token_reuse anomaly, "after theft detected" when its family was
	// already flagged, "not flagged by the detector: …" (same or another
	// client, how long after the first exchange) otherwise, or "reported by
	// the service".
	Reuse string `json:"reuse,omitempty"`
}

// Timeline returns the subject's events, anomalies and actions in time
// order, with gaps and token-reuse classifications marked.
func Timeline(ctx context.Context, conn driver.Conn, o TimelineOptions) ([]Entry, error) {
	if !validKind(o.Kind) {
		return nil, fmt.Errorf("postmortem: subject kind %q is not one of %s", o.Kind, strings.Join(Kinds, ", "))
	}
	if o.Subject == "" {
		return nil, fmt.Errorf("postmortem: no %s given", o.Kind)
	}
	if !o.To.After(o.From) {
		return nil, fmt.Errorf("postmortem: the window ends (%s) before it starts (%s)", o.To.Format(time.RFC3339), o.From.Format(time.RFC3339))
	}
	t, err := Run(ctx, conn, "timeline", map[string]string{
		"kind": o.Kind, "subject": o.Subject,
		"from": o.From.UTC().Format(time.RFC3339), "to": o.To.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return nil, err
	}
	es := make([]Entry, 0, len(t.Rows))
	for _, r := range t.Rows {
		s := func(col string) string { return Text(r[t.Col(col)]) }
		ns, _ := r[t.Col("time_ns")].(int64)
		es = append(es, Entry{
			Time: time.Unix(0, ns).UTC(), TimeNS: ns, Source: s("source"), What: s("what"), Result: s("result"), Reason: s("reason"),
			SessionID: s("session_id"), FamilyID: s("family_id"), UserID: s("user_id"), IP: s("ip"), Country: s("country"),
			ASN: s("asn"), TokenID: s("token_id"), ParentTokenID: s("parent_token_id"), DeviceID: s("device_id"),
			UserAgent: s("user_agent"), Detail: s("detail"), ID: s("id"),
		})
	}
	mark(es, o.Gap)
	return es, nil
}

func validKind(k string) bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// mark sets the gaps and the token-reuse classifications.
func mark(es []Entry, gap time.Duration) {
	if gap <= 0 {
		gap = 10 * time.Minute
	}
	// The offending events of token_reuse anomalies, by time and family.
	type key struct {
		ns     int64
		family string
	}
	theft := map[key]string{}
	flagged := map[string]int64{} // family → first theft time
	for _, e := range es {
		if e.Source == "anomaly" && strings.HasPrefix(e.What, "token_reuse/") {
			theft[key{e.TimeNS, e.FamilyID}] = strings.TrimPrefix(e.What, "token_reuse/")
			if t, ok := flagged[e.FamilyID]; !ok || e.TimeNS < t {
				flagged[e.FamilyID] = e.TimeNS
			}
		}
	}
	exchanged := map[string]*Entry{} // family/parent token → its first exchange
	for i := range es {
		e := &es[i]
		if i > 0 {
			e.SincePrevious = time.Duration(e.TimeNS - es[i-1].TimeNS)
			e.GapBefore = e.SincePrevious >= gap
		}
		if e.Source != "event" {
			continue
		}
		switch {
		case e.What == "token.refresh_failed" && e.Reason == "reused":
			e.Reuse = "reported by the service"
			if kind, ok := theft[key{e.TimeNS, e.FamilyID}]; ok {
				e.Reuse = "theft: " + kind + " (reported by the service)"
			}
		case e.What == "token.refreshed" && e.ParentTokenID != "":
			k := e.FamilyID + "/" + e.ParentTokenID
			if kind, ok := theft[key{e.TimeNS, e.FamilyID}]; ok {
				e.Reuse = "theft: " + kind
			} else if first := exchanged[k]; first != nil {
				if t, ok := flagged[e.FamilyID]; ok && t <= e.TimeNS {
					e.Reuse = "after theft detected"
				} else {
					client := "another client"
					if first.IP == e.IP && first.UserAgent == e.UserAgent && first.DeviceID == e.DeviceID {
						client = "same client"
					}
					e.Reuse = fmt.Sprintf("not flagged by the detector: %s, %s after the first exchange", client, human(time.Duration(e.TimeNS-first.TimeNS)))
				}
			}
			if exchanged[k] == nil {
				exchanged[k] = e
			}
		}
	}
}

// WriteTimeline writes es in format: an aligned table or Markdown (gaps as
// separator lines), JSON, or CSV (gaps and reuse as columns).
func WriteTimeline(w io.Writer, es []Entry, format string) error {
	switch format {
	case "json":
		if es == nil {
			es = []Entry{}
		}
		return writeJSON(w, es)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"time", "time_ns", "source", "what", "result", "reason", "reuse", "session_id", "family_id", "user_id",
			"ip", "country", "asn", "token_id", "parent_token_id", "device_id", "user_agent", "detail", "id", "since_previous_s", "gap_before"})
		for _, e := range es {
			_ = cw.Write(csvSafe([]string{e.Time.Format(time.RFC3339Nano), strconv.FormatInt(e.TimeNS, 10), e.Source, e.What, e.Result, e.Reason, e.Reuse,
				e.SessionID, e.FamilyID, e.UserID, e.IP, e.Country, e.ASN, e.TokenID, e.ParentTokenID, e.DeviceID, e.UserAgent, e.Detail, e.ID,
				strconv.FormatFloat(e.SincePrevious.Seconds(), 'f', -1, 64), strconv.FormatBool(e.GapBefore)}))
		}
		cw.Flush()
		return cw.Error()
	case "md":
		cols := []string{"time (UTC)", "", "what", "result", "session", "ip", "client", "token ← parent", "notes"}
		var rows [][]string
		for _, e := range es {
			if e.GapBefore {
				rows = append(rows, []string{"", "", "**… " + human(e.SincePrevious) + " without activity …**", "", "", "", "", "", ""})
			}
			rows = append(rows, e.cells())
		}
		return writeMarkdownTable(w, cols, rows)
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME (UTC)\t\tWHAT\tRESULT\tSESSION\tIP\tCLIENT\tTOKEN ← PARENT\tNOTES")
		for _, e := range es {
			if e.GapBefore {
				fmt.Fprintf(tw, "\t\t… %s without activity …\t\t\t\t\t\t\n", human(e.SincePrevious))
			}
			fmt.Fprintln(tw, strings.Join(oneLine(e.cells()), "\t"))
		}
		return tw.Flush()
	}
	return fmt.Errorf("postmortem: unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// cells are the entry's columns in the table and Markdown formats.
func (e Entry) cells() []string {
	mark := map[string]string{"event": "", "anomaly": "ANOMALY", "action": "ACTION"}[e.Source]
	result := e.Result
	if e.Reason != "" {
		result = strings.TrimSpace(result + " " + e.Reason)
	}
	client := e.Country
	if e.ASN != "" && e.ASN != "0" {
		client = strings.TrimSpace(client + " AS" + e.ASN)
	}
	if e.DeviceID != "" {
		client = strings.TrimSpace(client + " " + e.DeviceID)
	}
	token := e.TokenID
	if e.ParentTokenID != "" {
		token += " ← " + e.ParentTokenID
	}
	notes := e.Detail
	if e.Reuse != "" {
		notes = strings.TrimSpace("REUSE " + e.Reuse + " " + notes)
	}
	return []string{e.Time.Format("2006-01-02 15:04:05.000"), mark, e.What, result, e.SessionID, e.IP, client, token, notes}
}

// human formats a duration for gap lines: 2h13m, 45m10s, 12.5s.
func human(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Truncate(time.Minute).String()
	case d >= time.Minute:
		return d.Truncate(time.Second).String()
	}
	return d.Truncate(100 * time.Millisecond).String()
}

// FromTo returns the window of a lookup: the given times, or the last 30
// days up to now when they are empty.
func FromTo(from, to string, now time.Time) (time.Time, time.Time, error) {
	t1, t2 := now.Add(-30*24*time.Hour), now
	var err error
	if from != "" {
		if t1, err = queries.ParseTime(from); err != nil {
			return t1, t2, fmt.Errorf("--from: %w", err)
		}
	}
	if to != "" {
		if t2, err = queries.ParseTime(to); err != nil {
			return t1, t2, fmt.Errorf("--to: %w", err)
		}
	}
	if !t2.After(t1) {
		return t1, t2, fmt.Errorf("--to (%s) must be after --from (%s)", t2.Format(time.RFC3339), t1.Format(time.RFC3339))
	}
	return t1, t2, nil
}
