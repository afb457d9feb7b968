// Package score is the scorecard behind `vigil score`: it judges the
// detectors and the revocation path against the simulator's ground truth
// (package sim/truth) and the anomalies vigil wrote to ClickHouse.
//
// For every scenario and every detector the scenario expects it reports
// whether the instances were detected, the time to detect (first offending
// event handed to Kafka → anomaly detected), the time to revoke (first
// offending event handed to Kafka → revocation received by the simulated
// session service) and the false positives, as a text table (WriteTable)
// and as JSON (WriteJSON).
//
// Matching rules:
//
//   - An anomaly matches a scenario instance when the tenants are equal, at
//     least one subject overlaps (the anomaly's user_id is one of the
//     instance's user_ids, or its session_id one of session_ids, its
//     family_id one of family_ids, or its ip one of ips; empty strings never
//     match) and its first_event_time lies within [start − slack,
//     end + slack], bounds included. Slack is Options.Slack (default 1 m).
//     An instance that names no subjects at all is about the whole service
//     (a reconnect storm, a key-rotation churn, a login surge): any anomaly
//     in its time window matches it, of its tenant when it names one —
//     unless an instance that names the anomaly's subject matches it, which
//     then gets it instead. Revocations never match such an instance. An
//     anomaly that names no subject (a tenant-wide surge) goes to the
//     service-wide instances around it; failing those, to one instance in
//     its window that expects its detector (the latest to start at or
//     before the anomaly's first event).
//   - Instances the simulator marked skipped (their offending event never
//     happened) are left out and listed in the notes; an anomaly about one
//     counts as about normal traffic.
//   - For an attack or operations instance, a matching anomaly whose
//     detector is in the instance's expect list is a detection. Time to
//     detect is the earliest detected_at of that detector's matching
//     anomalies minus first_offending_wall, clamped at 0 (both are wall
//     clocks). A matching anomaly from another detector is counted as an
//     "other detector" anomaly of the scenario: informative, not a false
//     positive.
//   - An anomaly that matches no attack or operations instance but matches
//     benign instances is one false positive, attributed to the benign
//     scenario of the earliest matching instance (by start, then instance
//     name). An anomaly that matches no instance at all is a false positive
//     attributed to "normal traffic".
//   - A revocation answered 404 (outcome not_found: the subject had ended)
//     earns no instance credit; matching nothing, it is a false positive.
//   - A revocation matches an instance when the tenants are equal, its
//     subject overlaps the instance's ids (session_id for scope "session",
//     family_id for "family", user_id for "user"; any of the three for an
//     unknown scope) and received_at ≥ first_offending_wall − slack (no
//     lower bound when the instance has no first_offending_wall). Time to
//     revoke is the earliest matching received_at minus
//     first_offending_wall, clamped at 0. It belongs to the instance, so
//     every detector row of a scenario shows the same revocations. A
//     revocation received but not enforced still counts as received; the
//     row says how many instances saw only unenforced revocations.
//   - A revocation that matches only benign instances is a false positive
//     revocation attributed like an anomaly (earliest benign instance); one
//     that matches no instance is attributed to "normal traffic".
//   - Shadow anomalies count like the others; rows carry how many of their
//     anomalies were shadow ones.
//
// A class other than the three truth knows is scored like attack. Rows come
// in class order (attack, operations, any other class, then benign), then by scenario name, then by detector; benign rows have
// detector "-". A final "normal traffic" row and the totals follow. Totals
// add up the attack and operations rows (an instance that expects two
// detectors counts once per detector) plus every false positive. When the
// anomalies table is missing, detection is not scored: those columns say
// "n/a" (null in JSON) and the report carries a note.
package score

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigilhq/vigil/sim/truth"
)

// DefaultSlack is the matching slack used when Options.Slack is zero.
const DefaultSlack = time.Minute

// DefaultDatabase is the ClickHouse database used when Options.Database is empty.
const DefaultDatabase = "vigil"

// NormalTraffic is the scenario name of the row that collects false
// positives matching no scenario instance.
const NormalTraffic = "normal traffic"

// Options configures scoring.
type Options struct {
	Database string        // ClickHouse database holding the anomalies table; default DefaultDatabase
	Slack    time.Duration // tolerance of the time-window matching; default DefaultSlack
}

func (o Options) database() string {
	if o.Database == "" {
		return DefaultDatabase
	}
	return o.Database
}

func (o Options) slack() time.Duration {
	if o.Slack <= 0 {
		return DefaultSlack
	}
	return o.Slack
}

// Anomaly is one row of the ClickHouse anomalies table, with each time
// taken from its nanosecond column when that is non-zero.
type Anomaly struct {
	ID             string    `json:"id"`
	Detector       string    `json:"detector"`
	Kind           string    `json:"kind"`
	Severity       string    `json:"severity"`
	Shadow         bool      `json:"shadow"`
	Tenant         string    `json:"tenant"`
	UserID         string    `json:"user_id"`
	SessionID      string    `json:"session_id"`
	FamilyID       string    `json:"family_id"`
	IP             string    `json:"ip"`
	Evidence       string    `json:"evidence"`
	FirstEventTime time.Time `json:"first_event_time"`
	DetectedAt     time.Time `json:"detected_at"`
	WindowStart    time.Time `json:"window_start"`
	WindowEnd      time.Time `json:"window_end"`
}

// Report is a scorecard: one row per scenario and expected detector, the
// normal-traffic false positives and the totals.
type Report struct {
	DetectionScored bool     `json:"detection_scored"` // false when there was no anomalies table to read
	SlackMS         float64  `json:"slack_ms"`         // the matching slack used
	Notes           []string `json:"notes"`            // caveats, e.g. why detection was not scored
	Rows            []Row    `json:"rows"`
	NormalTraffic   Row      `json:"normal_traffic"` // false positives that match no scenario instance
	Totals          Totals   `json:"totals"`
}

// Row is the score of one scenario for one detector (or, for benign
// scenarios and normal traffic, its false positives); nil pointers and
// slices are values that do not apply or were not scored.
type Row struct {
	Scenario  string `json:"scenario"`
	Class     string `json:"class"`    // "-" for normal traffic
	Detector  string `json:"detector"` // "-" for benign scenarios and normal traffic
	Instances int    `json:"instances"`
	// Detected counts the instances the detector caught, MissedInstances
	// names the others, and TimeToDetect summarises the caught ones.
	Detected        *int       `json:"detected"`
	MissedInstances []string   `json:"missed_instances"`
	TimeToDetect    *Durations `json:"time_to_detect"`
	// Revoked counts the instances that saw a matching revocation,
	// Unenforced those of them whose matching revocations were all left
	// unenforced by the session service, and TimeToRevoke summarises them.
	Revoked      *int       `json:"revoked"`
	Unenforced   *int       `json:"unenforced"`
	TimeToRevoke *Durations `json:"time_to_revoke"`
	// Anomalies counts the distinct anomalies the row is about: the
	// detector's detections, or the row's false positives.
	Anomalies       *int `json:"anomalies"`
	ShadowAnomalies *int `json:"shadow_anomalies"`
	// OtherDetectors counts anomalies matching the scenario's instances from
	// detectors the instances do not expect.
	OtherDetectors           []DetectorCount `json:"other_detectors"`
	FalsePositiveAnomalies   *int            `json:"false_positive_anomalies"`
	FalsePositiveRevocations *int            `json:"false_positive_revocations"`
	// FalsePositiveDetectors says which detectors raised the false positives.
	FalsePositiveDetectors []DetectorCount `json:"false_positive_detectors"`
	// FlaggedInstances counts benign instances with at least one false
	// positive anomaly or revocation.
	FlaggedInstances *int `json:"flagged_instances"`
}

// DetectorCount is a number of anomalies raised by one detector.
type DetectorCount struct {
	Detector  string `json:"detector"`
	Anomalies int    `json:"anomalies"`
}

// Totals sums the attack and operations rows and every false positive.
type Totals struct {
	Instances                int        `json:"instances"` // instance-detector pairs expected to be detected
	Detected                 *int       `json:"detected"`
	TimeToDetect             *Durations `json:"time_to_detect"`
	Revoked                  int        `json:"revoked"`
	Unenforced               int        `json:"unenforced"`
	TimeToRevoke             *Durations `json:"time_to_revoke"`
	Anomalies                *int       `json:"anomalies"`        // every anomaly read
	ShadowAnomalies          *int       `json:"shadow_anomalies"` // of which shadow
	OtherDetectorAnomalies   *int       `json:"other_detector_anomalies"`
	FalsePositiveAnomalies   *int       `json:"false_positive_anomalies"`
	Revocations              int        `json:"revocations"` // every revocation received
	FalsePositiveRevocations int        `json:"false_positive_revocations"`
}

// Durations summarises measured durations; its JSON form gives them in
// milliseconds, with null median and max when there are none.
type Durations struct {
	Count  int
	Median time.Duration
	Max    time.Duration
}

// instance is one scenario instance and what happened to it.
type instance struct {
	truth.Scenario
	users, sessions, families, ips map[string]bool
	detectedAt                     map[string]time.Time // detector → earliest detected_at
	detections                     map[string]int       // detector → matching anomalies
	shadows                        map[string]int       // detector → matching shadow anomalies
	revokedAt                      time.Time            // earliest matching revocation
	enforced                       bool                 // some matching revocation was enforced
	fpAnomalies, fpRevocations     int
}

func newInstance(s truth.Scenario) *instance {
	return &instance{
		Scenario:   s,
		users:      set(s.UserIDs),
		sessions:   set(s.SessionIDs),
		families:   set(s.FamilyIDs),
		ips:        set(s.IPs),
		detectedAt: map[string]time.Time{},
		detections: map[string]int{},
		shadows:    map[string]int{},
	}
}

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id != "" {
			m[id] = true
		}
	}
	return m
}

func (in *instance) benign() bool { return in.Class == truth.ClassBenign }

func (in *instance) expects(detector string) bool { return slices.Contains(in.Expect, detector) }

// wide reports whether the instance names no subjects: it is about the
// whole service (a reconnect storm, a key-rotation churn, a login surge).
func (in *instance) wide() bool {
	return len(in.users)+len(in.sessions)+len(in.families)+len(in.ips) == 0
}

func (in *instance) matchesAnomaly(a Anomaly, slack time.Duration) bool {
	switch {
	case in.wide():
		if in.Tenant != "" && a.Tenant != in.Tenant {
			return false
		}
	case a.UserID == "" && a.SessionID == "" && a.FamilyID == "" && a.IP == "":
		// An anomaly about no one in particular (a tenant-wide surge of
		// failed logins) is about an instance that expects its detector.
		if in.Tenant != "" && a.Tenant != in.Tenant || !in.expects(a.Detector) {
			return false
		}
	case a.Tenant != in.Tenant:
		return false
	case !(in.users[a.UserID] || in.sessions[a.SessionID] || in.families[a.FamilyID] || in.ips[a.IP]):
		return false
	}
	return !a.FirstEventTime.Before(in.Start.Add(-slack)) && !a.FirstEventTime.After(in.End.Add(slack))
}

func (in *instance) matchesRevocation(r truth.Revocation, slack time.Duration) bool {
	if r.Tenant != in.Tenant {
		return false
	}
	var hit bool
	switch r.Scope {
	case "session":
		hit = in.sessions[r.SessionID]
	case "family":
		hit = in.families[r.FamilyID]
	case "user":
		hit = in.users[r.UserID]
	default:
		hit = in.sessions[r.SessionID] || in.families[r.FamilyID] || in.users[r.UserID]
	}
	if !hit {
		return false
	}
	return in.FirstOffendingWall.IsZero() || !r.ReceivedAt.Before(in.FirstOffendingWall.Add(-slack))
}

// sinceOffending is t − first_offending_wall clamped at 0; ok is false when
// the instance has no first_offending_wall.
func (in *instance) sinceOffending(t time.Time) (d time.Duration, ok bool) {
	if in.FirstOffendingWall.IsZero() {
		return 0, false
	}
	return max(t.Sub(in.FirstOffendingWall), 0), true
}

// groupKey identifies the instances of one scenario.
type groupKey struct{ class, scenario string }

// fpTally collects the false positives attributed to one place.
type fpTally struct {
	anomalies, shadows, revocations int
	detectors                       map[string]int
}

func (t *fpTally) addAnomaly(a Anomaly) {
	t.anomalies++
	if a.Shadow {
		t.shadows++
	}
	if t.detectors == nil {
		t.detectors = map[string]int{}
	}
	t.detectors[a.Detector]++
}

// candidates returns the instances an anomaly is about. An anomaly naming
// a subject goes to the instances naming it, else to the service-wide ones
// around it. An anomaly naming no subject goes to the service-wide
// instances around it, else to one instance expecting its detector: the
// latest to start at or before its first event (the earliest otherwise).
// insts is sorted by start.
func candidates(insts []*instance, a Anomaly, slack time.Duration) []*instance {
	var named, wide []*instance
	for _, in := range insts {
		if !in.matchesAnomaly(a, slack) {
			continue
		}
		if in.wide() {
			wide = append(wide, in)
		} else {
			named = append(named, in)
		}
	}
	subjectless := a.UserID == "" && a.SessionID == "" && a.FamilyID == "" && a.IP == ""
	switch {
	case !subjectless && len(named) > 0:
		return named
	case len(wide) > 0 || len(named) == 0:
		return wide
	}
	pick := named[0]
	for _, in := range named {
		if !in.Start.After(a.FirstEventTime) {
			pick = in
		}
	}
	return []*instance{pick}
}

// Score matches anomalies and revocations against the truth file and builds
// the report; it is pure and its result does not depend on input order.
func Score(f truth.File, anomalies []Anomaly, o Options) Report {
	return score(f, anomalies, o, true)
}

func score(f truth.File, anomalies []Anomaly, o Options, scored bool) Report {
	slack := o.slack()
	r := Report{DetectionScored: scored, SlackMS: ms(slack), Notes: []string{}}

	insts := make([]*instance, 0, len(f.Scenarios))
	var skipped []string
	for _, s := range f.Scenarios {
		if s.Skipped {
			skipped = append(skipped, s.Instance)
			continue
		}
		insts = append(insts, newInstance(s))
	}
	if len(skipped) > 0 {
		slices.Sort(skipped)
		r.Notes = append(r.Notes, fmt.Sprintf("not scored (skipped by the simulator: their offending event never happened): %s", strings.Join(skipped, ", ")))
	}
	// Attribution order: earliest start first, then instance name.
	slices.SortStableFunc(insts, func(a, b *instance) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Instance, b.Instance))
	})
	for _, in := range insts {
		if in.FirstOffendingWall.IsZero() && !in.benign() {
			r.Notes = append(r.Notes, fmt.Sprintf("instance %s has no first_offending_wall: its time to detect and time to revoke are not measured", in.Instance))
		}
	}

	fpByGroup := map[groupKey]*fpTally{}
	fpFor := func(k groupKey) *fpTally {
		t := fpByGroup[k]
		if t == nil {
			t = &fpTally{}
			fpByGroup[k] = t
		}
		return t
	}
	var normal fpTally
	other := map[groupKey]map[string]int{} // scenario → detector → anomalies
	otherTotal, shadowTotal := 0, 0

	if scored {
		as := slices.Clone(anomalies)
		slices.SortFunc(as, func(a, b Anomaly) int {
			return cmp.Or(a.DetectedAt.Compare(b.DetectedAt), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Detector, b.Detector))
		})
		for _, a := range as {
			if a.Shadow {
				shadowTotal++
			}
			var firstBenign *instance
			matchedActive, detection := false, false
			otherIn := map[groupKey]bool{}
			for _, in := range candidates(insts, a, slack) {
				if in.benign() {
					if firstBenign == nil {
						firstBenign = in
					}
					continue
				}
				matchedActive = true
				if !in.expects(a.Detector) {
					otherIn[groupKey{in.Class, in.Scenario.Scenario}] = true
					continue
				}
				detection = true
				in.detections[a.Detector]++
				if a.Shadow {
					in.shadows[a.Detector]++
				}
				if t, ok := in.detectedAt[a.Detector]; !ok || a.DetectedAt.Before(t) {
					in.detectedAt[a.Detector] = a.DetectedAt
				}
			}
			for k := range otherIn {
				if other[k] == nil {
					other[k] = map[string]int{}
				}
				other[k][a.Detector]++
			}
			switch {
			case matchedActive:
				if !detection {
					otherTotal++
				}
			case firstBenign != nil:
				firstBenign.fpAnomalies++
				fpFor(groupKey{firstBenign.Class, firstBenign.Scenario.Scenario}).addAnomaly(a)
			default:
				normal.addAnomaly(a)
			}
		}
	}

	revs := slices.Clone(f.Revocations)
	slices.SortFunc(revs, func(a, b truth.Revocation) int {
		return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), cmp.Compare(a.ID, b.ID))
	})
	fpRevTotal := 0
	for _, v := range revs {
		var firstBenign *instance
		matchedActive := false
		for _, in := range insts {
			if !in.matchesRevocation(v, slack) {
				continue
			}
			if in.benign() {
				if firstBenign == nil {
					firstBenign = in
				}
				continue
			}
			matchedActive = true
			if v.Outcome == truth.OutcomeNotFound { // too late or wrong: not a revocation of it
				continue
			}
			if in.revokedAt.IsZero() || v.ReceivedAt.Before(in.revokedAt) {
				in.revokedAt = v.ReceivedAt
			}
			in.enforced = in.enforced || v.Enforced
		}
		switch {
		case matchedActive:
		case firstBenign != nil:
			fpRevTotal++
			firstBenign.fpRevocations++
			fpFor(groupKey{firstBenign.Class, firstBenign.Scenario.Scenario}).revocations++
		default:
			fpRevTotal++
			normal.revocations++
		}
	}

	// Group instances by scenario, in attribution order within a group.
	groups := map[groupKey][]*instance{}
	for _, in := range insts {
		k := groupKey{in.Class, in.Scenario.Scenario}
		groups[k] = append(groups[k], in)
	}
	keys := make([]groupKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b groupKey) int {
		return cmp.Or(cmp.Compare(classRank(a.class), classRank(b.class)), cmp.Compare(a.class, b.class), cmp.Compare(a.scenario, b.scenario))
	})

	var ttd, ttr []time.Duration
	t := &r.Totals
	for _, k := range keys {
		g := groups[k]
		if k.class == truth.ClassBenign {
			r.Rows = append(r.Rows, benignRow(k, g, fpFor(k), scored))
			continue
		}
		var detectors []string
		for _, in := range g {
			if len(in.Expect) == 0 {
				detectors = append(detectors, "-")
			}
			detectors = append(detectors, in.Expect...)
		}
		slices.Sort(detectors)
		for _, d := range slices.Compact(detectors) {
			row, dSamples, rSamples := activeRow(k, d, g, other[k], scored)
			r.Rows = append(r.Rows, row)
			if d == "-" {
				continue
			}
			t.Instances += row.Instances
			t.Revoked += *row.Revoked
			t.Unenforced += *row.Unenforced
			ttd = append(ttd, dSamples...)
			ttr = append(ttr, rSamples...)
		}
	}

	r.NormalTraffic = Row{
		Scenario:                 NormalTraffic,
		Class:                    "-",
		Detector:                 "-",
		FalsePositiveRevocations: ptr(normal.revocations),
	}
	if scored {
		r.NormalTraffic.Anomalies = ptr(normal.anomalies)
		r.NormalTraffic.ShadowAnomalies = ptr(normal.shadows)
		r.NormalTraffic.FalsePositiveAnomalies = ptr(normal.anomalies)
		r.NormalTraffic.FalsePositiveDetectors = counts(normal.detectors)
	}

	t.TimeToRevoke = summarize(ttr)
	t.Revocations = len(f.Revocations)
	t.FalsePositiveRevocations = fpRevTotal
	if scored {
		detected, fps := 0, normal.anomalies
		for _, row := range r.Rows {
			if row.Class != truth.ClassBenign && row.Detector != "-" {
				detected += *row.Detected
			}
			if row.FalsePositiveAnomalies != nil && row.Class == truth.ClassBenign {
				fps += *row.FalsePositiveAnomalies
			}
		}
		t.Detected = ptr(detected)
		t.TimeToDetect = summarize(ttd)
		t.Anomalies = ptr(len(anomalies))
		t.ShadowAnomalies = ptr(shadowTotal)
		t.OtherDetectorAnomalies = ptr(otherTotal)
		t.FalsePositiveAnomalies = ptr(fps)
	}
	return r
}

// activeRow scores the instances of an attack or operations scenario that
// expect detector d ("-" for instances expecting none), returning the time
// to detect and time to revoke samples too.
func activeRow(k groupKey, d string, g []*instance, other map[string]int, scored bool) (Row, []time.Duration, []time.Duration) {
	row := Row{Scenario: k.scenario, Class: k.class, Detector: d}
	var ttd, ttr []time.Duration
	detected, revoked, unenforced, anomalies, shadows := 0, 0, 0, 0, 0
	missed := []string{}
	for _, in := range g {
		if d == "-" && len(in.Expect) != 0 || d != "-" && !in.expects(d) {
			continue
		}
		row.Instances++
		if !in.revokedAt.IsZero() {
			revoked++
			if !in.enforced {
				unenforced++
			}
			if s, ok := in.sinceOffending(in.revokedAt); ok {
				ttr = append(ttr, s)
			}
		}
		if at, ok := in.detectedAt[d]; ok {
			detected++
			anomalies += in.detections[d]
			shadows += in.shadows[d]
			if s, ok := in.sinceOffending(at); ok {
				ttd = append(ttd, s)
			}
		} else {
			missed = append(missed, in.Instance)
		}
	}
	row.Revoked = ptr(revoked)
	row.Unenforced = ptr(unenforced)
	row.TimeToRevoke = summarize(ttr)
	row.FalsePositiveRevocations = ptr(0)
	if scored {
		row.OtherDetectors = counts(other)
		row.FalsePositiveAnomalies = ptr(0)
		row.FalsePositiveDetectors = []DetectorCount{}
		if d != "-" {
			row.Detected = ptr(detected)
			row.MissedInstances = missed
			row.TimeToDetect = summarize(ttd)
			row.Anomalies = ptr(anomalies)
			row.ShadowAnomalies = ptr(shadows)
		}
	}
	return row, ttd, ttr
}

// benignRow reports the false positives attributed to a benign scenario.
func benignRow(k groupKey, g []*instance, fp *fpTally, scored bool) Row {
	row := Row{
		Scenario:                 k.scenario,
		Class:                    k.class,
		Detector:                 "-",
		Instances:                len(g),
		FalsePositiveRevocations: ptr(fp.revocations),
	}
	if scored {
		flagged := 0
		for _, in := range g {
			if in.fpAnomalies > 0 || in.fpRevocations > 0 {
				flagged++
			}
		}
		row.Anomalies = ptr(fp.anomalies)
		row.ShadowAnomalies = ptr(fp.shadows)
		row.FalsePositiveAnomalies = ptr(fp.anomalies)
		row.FalsePositiveDetectors = counts(fp.detectors)
		row.FlaggedInstances = ptr(flagged)
	}
	return row
}

func classRank(c string) int {
	switch c {
	case truth.ClassAttack:
		return 0
	case truth.ClassOperations:
		return 1
	case truth.ClassBenign:
		return 3
	default:
		return 2
	}
}

// counts lists m by detector name; it is never nil.
func counts(m map[string]int) []DetectorCount {
	out := make([]DetectorCount, 0, len(m))
	for d, n := range m {
		out = append(out, DetectorCount{Detector: d, Anomalies: n})
	}
	slices.SortFunc(out, func(a, b DetectorCount) int { return cmp.Compare(a.Detector, b.Detector) })
	return out
}

// summarize returns the count, median and maximum of ds (the median of an
// even count is the mean of the middle two).
func summarize(ds []time.Duration) *Durations {
	s := &Durations{Count: len(ds)}
	if len(ds) == 0 {
		return s
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	n := len(ds)
	s.Max = ds[n-1]
	if n%2 == 1 {
		s.Median = ds[n/2]
	} else {
		s.Median = ds[n/2-1] + (ds[n/2]-ds[n/2-1])/2
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
