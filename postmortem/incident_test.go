package postmortem_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/golden"
	"github.com/vigilhq/vigil/postmortem"
	"github.com/vigilhq/vigil/postmortem/fixture"
	"github.com/vigilhq/vigil/slo"
)

// TestTimeline is issue 10's acceptance 1 for timelines: each subject
// kind in each format against golden files, with the gap and the
// token-reuse classifications visible.
func TestTimeline(t *testing.T) {
	fx := fixture.Load(t)
	win := func(kind, subject string) postmortem.TimelineOptions {
		return postmortem.TimelineOptions{Kind: kind, Subject: subject, From: fixture.T0.Add(-time.Hour), To: fixture.T0.Add(time.Hour)}
	}
	for _, c := range []struct{ kind, subject string }{{"family", "f1"}, {"session", "s1"}, {"user", "u4"}, {"ip", "203.0.113.50"}, {"session", "s9"}} {
		es, err := postmortem.Timeline(context.Background(), fx.Conn, win(c.kind, c.subject))
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			t.Errorf("%s %s: empty timeline", c.kind, c.subject)
		}
		for _, f := range postmortem.Formats {
			var b bytes.Buffer
			if err := postmortem.WriteTimeline(&b, es, f); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "timeline", c.kind+"-"+c.subject+"."+f), b.Bytes())
		}
	}

	es, err := postmortem.Timeline(context.Background(), fx.Conn, win("family", "f1"))
	if err != nil {
		t.Fatal(err)
	}
	reuse := map[string]string{}
	gaps := 0
	for _, e := range es {
		if e.TokenID != "" {
			reuse[e.TokenID] = e.Reuse
		}
		if e.GapBefore {
			gaps++
			if e.SincePrevious < 18*time.Minute {
				t.Errorf("gap before %s of %s", e.What, e.SincePrevious)
			}
		}
	}
	want := map[string]string{"tk2": "", "tk2b": "", "tk2c": "not flagged by the detector: same client, 200ms after the first exchange", "tk3": "theft: replay_other_client", "tk4": "after theft detected"}
	for tok, w := range want {
		if reuse[tok] != w {
			t.Errorf("refresh to %s: reuse %q, want %q", tok, reuse[tok], w)
		}
	}
	if gaps != 1 {
		t.Errorf("%d gaps marked in f1's timeline, want 1 (the 19 minutes before the replay)", gaps)
	}
	for _, bad := range []postmortem.TimelineOptions{
		{Kind: "device", Subject: "x", From: fixture.T0, To: fixture.T0.Add(time.Hour)},
		{Kind: "session", Subject: "", From: fixture.T0, To: fixture.T0.Add(time.Hour)},
		{Kind: "session", Subject: "s1", From: fixture.T0, To: fixture.T0},
	} {
		if _, err := postmortem.Timeline(context.Background(), fx.Conn, bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	// Hostile ids are bound, never spliced: they find nothing.
	es, err = postmortem.Timeline(context.Background(), fx.Conn, win("session", `s1' OR 1=1 --\'`))
	if err != nil || len(es) != 0 {
		t.Errorf("a hostile id: %d entries, %v; want none and no error", len(es), err)
	}
}

// TestIncident is issue 10's acceptance 1 for the report: the Markdown
// report of the fixture's window against a golden file; the HTML report
// self-contained, with three well-formed SVG charts.
func TestIncident(t *testing.T) {
	fx := fixture.Load(t)
	inc, err := postmortem.BuildIncident(context.Background(), fx.Conn, postmortem.IncidentOptions{
		From: fixture.T0.Add(-5 * time.Minute), To: fixture.T0.Add(40 * time.Minute), Database: fx.DB, SLOs: slo.Defaults(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := inc.WriteMarkdown(&md, 10); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "incident.md"), md.Bytes())
	for _, want := range []string{
		"Token theft: a rotated refresh token replayed from another client starts",
		"Credential-stuffing wave starts",
		"first revocation: revoke_family family f1, 40 ms after its first offending event",
		"revoke_session session s9 suppressed (allowlist_user)",
		"session s1 still valid 9950 ms after its revocation (2 validations after it)",
		"session s9 still valid 30000 ms after its revocation (1 validation after it)",
		"1 revocation made (1 suppressed by guardrails, 0 failed, 0 dry-run)",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	c := inc.Counts
	if c.Revoked != 1 || c.Suppressed != 1 || c.Anomalies != 4 || c.DeadLetters != 2 || c.ValidAfterRevocation != 2 || c.UsersAffected != 2 {
		t.Errorf("counts = %+v", c)
	}

	var page bytes.Buffer
	if err := inc.WriteHTML(&page, 10); err != nil {
		t.Fatal(err)
	}
	h := page.String()
	svgs := regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(h, -1)
	if len(svgs) != 3 {
		t.Errorf("%d SVG charts, want 3", len(svgs))
	}
	for _, s := range svgs {
		d := xml.NewDecoder(strings.NewReader(s))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Errorf("a chart is not well-formed SVG: %v", err)
				break
			}
		}
	}
	for _, bad := range []string{"<script", "src=\"http", "href=\"http", "<link"} {
		if strings.Contains(h, bad) {
			t.Errorf("the HTML report has %q: it must be readable offline", bad)
		}
	}
	for _, want := range []string{"<h1>Incident report: 2026-11-20 13:55:00 to 2026-11-20 14:40:00 UTC</h1>", "Credential-stuffing wave", "Failed login ratio", "SLO burn rate"} {
		if !strings.Contains(h, want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
}
