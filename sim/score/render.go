package score

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/sim/truth"
)

// MarshalJSON renders d as {"count": n, "median_ms": x, "max_ms": y}, with
// null median and max when there are no samples.
func (d Durations) MarshalJSON() ([]byte, error) {
	v := struct {
		Count    int      `json:"count"`
		MedianMS *float64 `json:"median_ms"`
		MaxMS    *float64 `json:"max_ms"`
	}{Count: d.Count}
	if d.Count > 0 {
		v.MedianMS, v.MaxMS = ptr(ms(d.Median)), ptr(ms(d.Max))
	}
	return json.Marshal(v)
}

// WriteJSON writes the report as indented JSON followed by a newline.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("score: write json: %w", err)
	}
	return nil
}

var tableHeader = []string{"SCENARIO", "CLASS", "DETECTOR", "INSTANCES", "DETECTED", "TTD P50", "TTD MAX", "REVOKED", "TTR P50", "TTR MAX", "FP ANOM", "FP REVOC", "NOTES"}

// WriteTable writes the report as an aligned text table (one line per row,
// then the normal-traffic row and the totals), followed by its notes.
func (r Report) WriteTable(w io.Writer) error {
	lines := [][]string{tableHeader}
	for _, row := range r.Rows {
		lines = append(lines, r.cells(row))
	}
	lines = append(lines, r.cells(r.NormalTraffic), r.totalCells())

	widths := make([]int, len(tableHeader))
	for _, l := range lines {
		for i, c := range l {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b bytes.Buffer
	for _, l := range lines {
		var line strings.Builder
		for i, c := range l {
			line.WriteString(c)
			if i < len(l)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	for _, n := range r.Notes {
		b.WriteString("note: " + n + "\n")
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("score: write table: %w", err)
	}
	return nil
}

// cells renders one row of the table.
func (r Report) cells(row Row) []string {
	active := row.Class != truth.ClassBenign && row.Scenario != NormalTraffic
	notScored := "-"
	if !r.DetectionScored {
		notScored = "n/a"
	}
	instances := strconv.Itoa(row.Instances)
	if row.Scenario == NormalTraffic && row.Class == "-" {
		instances = "-"
	}
	detected, ttd50, ttdMax := "-", "-", "-"
	if active && row.Detector != "-" {
		detected, ttd50, ttdMax = notScored, notScored, notScored
	}
	if row.Detected != nil {
		detected = fmt.Sprintf("%d/%d", *row.Detected, row.Instances)
	}
	if row.TimeToDetect != nil {
		ttd50, ttdMax = durationCells(*row.TimeToDetect)
	}
	revoked, ttr50, ttrMax := "-", "-", "-"
	if row.Revoked != nil {
		revoked = fmt.Sprintf("%d/%d", *row.Revoked, row.Instances)
	}
	if row.TimeToRevoke != nil {
		ttr50, ttrMax = durationCells(*row.TimeToRevoke)
	}
	fpAnom, fpRevoc := notScored, "-"
	if row.FalsePositiveAnomalies != nil {
		fpAnom = strconv.Itoa(*row.FalsePositiveAnomalies)
	}
	if row.FalsePositiveRevocations != nil {
		fpRevoc = strconv.Itoa(*row.FalsePositiveRevocations)
	}

	var notes []string
	if len(row.MissedInstances) > 0 {
		notes = append(notes, "missed "+strings.Join(row.MissedInstances, ", "))
	}
	if row.Unenforced != nil && *row.Unenforced > 0 {
		notes = append(notes, fmt.Sprintf("not enforced %d/%d", *row.Unenforced, *row.Revoked))
	}
	if row.FlaggedInstances != nil {
		notes = append(notes, fmt.Sprintf("flagged %d/%d", *row.FlaggedInstances, row.Instances))
	}
	if len(row.FalsePositiveDetectors) > 0 {
		notes = append(notes, "by "+detectorList(row.FalsePositiveDetectors))
	}
	if len(row.OtherDetectors) > 0 {
		notes = append(notes, "other "+detectorList(row.OtherDetectors))
	}
	if row.ShadowAnomalies != nil && *row.ShadowAnomalies > 0 {
		notes = append(notes, fmt.Sprintf("shadow %d", *row.ShadowAnomalies))
	}
	return []string{row.Scenario, row.Class, row.Detector, instances, detected, ttd50, ttdMax, revoked, ttr50, ttrMax, fpAnom, fpRevoc, strings.Join(notes, "; ")}
}

// totalCells renders the totals line of the table.
func (r Report) totalCells() []string {
	t := r.Totals
	detected, ttd50, ttdMax, fpAnom := "n/a", "n/a", "n/a", "n/a"
	if t.Detected != nil {
		detected = fmt.Sprintf("%d/%d", *t.Detected, t.Instances)
	}
	if t.TimeToDetect != nil {
		ttd50, ttdMax = durationCells(*t.TimeToDetect)
	}
	if t.FalsePositiveAnomalies != nil {
		fpAnom = strconv.Itoa(*t.FalsePositiveAnomalies)
	}
	ttr50, ttrMax := "-", "-"
	if t.TimeToRevoke != nil {
		ttr50, ttrMax = durationCells(*t.TimeToRevoke)
	}
	var notes []string
	if t.Anomalies != nil {
		a := fmt.Sprintf("anomalies %d", *t.Anomalies)
		if t.ShadowAnomalies != nil && *t.ShadowAnomalies > 0 {
			a += fmt.Sprintf(" (%d shadow)", *t.ShadowAnomalies)
		}
		notes = append(notes, a)
	}
	if t.OtherDetectorAnomalies != nil && *t.OtherDetectorAnomalies > 0 {
		notes = append(notes, fmt.Sprintf("other detectors %d", *t.OtherDetectorAnomalies))
	}
	notes = append(notes, fmt.Sprintf("revocations %d", t.Revocations))
	if t.Unenforced > 0 {
		notes = append(notes, fmt.Sprintf("not enforced %d/%d", t.Unenforced, t.Revoked))
	}
	return []string{"total", "", "", strconv.Itoa(t.Instances), detected, ttd50, ttdMax, fmt.Sprintf("%d/%d", t.Revoked, t.Instances), ttr50, ttrMax, fpAnom, strconv.Itoa(t.FalsePositiveRevocations), strings.Join(notes, "; ")}
}

func durationCells(d Durations) (median, maximum string) {
	if d.Count == 0 {
		return "-", "-"
	}
	return human(d.Median), human(d.Max)
}

func detectorList(ds []DetectorCount) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%s=%d", d.Detector, d.Anomalies)
	}
	return strings.Join(parts, ", ")
}

// human renders d for people: 180ms, 2.4s, 4m05s, 2h10m.
func human(d time.Duration) string {
	if r := d.Round(time.Millisecond); r < time.Second {
		return fmt.Sprintf("%dms", r.Milliseconds())
	}
	if r := d.Round(100 * time.Millisecond); r < time.Minute {
		return strconv.FormatFloat(r.Seconds(), 'f', 1, 64) + "s"
	}
	if r := d.Round(time.Second); r < time.Hour {
		return fmt.Sprintf("%dm%02ds", int(r/time.Minute), int(r%time.Minute/time.Second))
	}
	r := d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(r/time.Hour), int(r%time.Hour/time.Minute))
}
