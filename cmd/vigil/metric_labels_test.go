package main

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// identifierLabelNames are label names that would carry a user, session,
// token or address: none may appear.
var identifierLabelNames = map[string]bool{
	"user": true, "user_id": true, "session": true, "session_id": true, "family": true, "family_id": true,
	"token": true, "token_id": true, "ip": true, "address": true, "addr": true, "subject": true, "email": true,
	"device": true, "device_id": true, "id": true, "anomaly_id": true, "action_id": true,
}

// identifierShape matches values shaped like the identifiers the
// simulator and the tests use (u-000017, s-9-452102, d-000017,
// ev-9-801016, tokens family.N), emails and long hex strings (hashes).
var identifierShape = regexp.MustCompile(`^(u|s|d|ev|fam|ses|usr|tok)[-_][0-9a-z]|^[0-9a-f]{16,}$|@`)

// labelProblems lists the labels of the Prometheus text exposition body
// named like an identifier or whose value is an IP address, an email, a
// hash or shaped like a user, session, family, token or event id, and
// counts the series it read.
func labelProblems(body string) (problems []string, series int, err error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			series++
			for _, l := range m.GetLabel() {
				k, v := l.GetName(), l.GetValue()
				host := v
				if h, _, err := net.SplitHostPort(v); err == nil {
					host = h
				}
				if identifierLabelNames[k] || net.ParseIP(host) != nil || identifierShape.MatchString(v) || len(v) > 80 {
					problems = append(problems, fmt.Sprintf("%s{%s=%q}", name, k, v))
				}
			}
		}
	}
	return problems, series, nil
}

// checkMetricLabels fails t when /metrics (body) carries an identifier in
// a label: metrics are for aggregates, identifiers belong in ClickHouse.
func checkMetricLabels(t *testing.T, body string) {
	t.Helper()
	problems, series, err := labelProblems(body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, p := range problems {
		t.Errorf("/metrics: %s: a label carries an identifier", p)
	}
	if series < 20 {
		t.Errorf("only %d series in /metrics: the scan saw too little to mean anything", series)
	}
}

func TestLabelProblems(t *testing.T) {
	f := func(line string, wantBad bool) {
		t.Helper()
		problems, _, err := labelProblems(line + "\n")
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if (len(problems) > 0) != wantBad {
			t.Errorf("%s: problems %v, want flagged %v", line, problems, wantBad)
		}
	}
	f(`vigil_ingest_events_total{type="session.validated"} 3`, false)
	f(`vigil_ingest_lag_messages{partition="0",topic="session-events"} 0`, false)
	f(`vigil_revoke_actions_total{status="executed",guardrail=""} 1`, false)
	f(`vigil_build_info{version="v0.3.0",goversion="go1.26.8"} 1`, false)
	f(`x_total{user_id="alice"} 1`, true)
	f(`x_total{peer="10.0.3.212"} 1`, true)
	f(`x_total{peer="[2001:db8::1]:443"} 1`, true)
	f(`x_total{who="u-000017"} 1`, true)
	f(`x_total{who="s-9-452102"} 1`, true)
	f(`x_total{who="s-9-452102.3"} 1`, true)
	f(`x_total{who="alice@example.com"} 1`, true)
	f(`x_total{who="9f86d081884c7d659a2feaa0c55ad015"} 1`, true)
}
