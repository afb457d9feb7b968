package alerts_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/alerts"
	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
)

const exampleConfig = "../deploy/alertmanager/alertmanager.yml"

// anomalyAt returns an anomaly of detector/kind whose window ends at end.
func anomalyAt(id, detector, kind string, end time.Time) detect.Anomaly {
	return detect.Anomaly{
		ID: id, Detector: detector, Kind: kind, Severity: detect.SeverityHigh, Tenant: "acme", UserID: "u-" + id, FamilyID: "f-" + id,
		FirstEventTime: end.Add(-time.Second), DetectedAt: end, WindowStart: end.Add(-time.Minute), WindowEnd: end,
	}
}

func startSender(t *testing.T, c alerts.Config, o alerts.Options) *alerts.Sender {
	t.Helper()
	o.Config = c
	s, err := alerts.NewSender(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("sender shutdown: %v", err)
		}
	})
	return s
}

func testConfig(am *testenv.Alertmanager) alerts.Config {
	c := alerts.DefaultConfig()
	c.Alertmanagers, c.AllowHTTP = []string{am.URL}, true
	c.ResendInterval, c.Hold = time.Second, 3*time.Second
	return c
}

// firing counts, per receiver and alertname, the firing notifications
// that carried anomaly id.
func firing(h *testenv.Webhook, receiver, id string) (n int, ann map[string]string) {
	for _, no := range h.Notifications() {
		if no.Receiver != receiver || no.Status != "firing" {
			continue
		}
		for _, a := range no.Alerts {
			if a.Labels["anomaly_id"] == id && a.Status == "firing" {
				n++
				ann = a.Annotations
			}
		}
	}
	return n, ann
}

func resolved(h *testenv.Webhook, receiver, id string) bool {
	for _, no := range h.Notifications() {
		for _, a := range no.Alerts {
			if no.Receiver == receiver && a.Labels["anomaly_id"] == id && a.Status == "resolved" {
				return true
			}
		}
	}
	return false
}

// TestAlertmanagerRoutesAndResolves is acceptance point 1 at the
// package's edge: with Debian's Alertmanager running the example routing
// tree, a token theft reaches the security receiver once, with its
// annotations, and resolves after its window; an SRE anomaly reaches the
// SRE receiver.
func TestAlertmanagerRoutesAndResolves(t *testing.T) {
	hook := testenv.StartWebhook(t)
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerConfig(t, exampleConfig, hook, time.Second))
	s := startSender(t, testConfig(am), alerts.Options{Action: func(*detect.Anomaly) string { return "revoke_family requested" }})
	now := time.Now()
	_ = s.Handle(context.Background(), []detect.Anomaly{
		anomalyAt("theft-1", "token_reuse", "replay_other_client", now),
		anomalyAt("churn-1", "session_churn", "end_burst", now),
	})
	testenv.WaitFor(t, time.Minute, "the theft at the security receiver and the churn at the SRE receiver", func() (bool, string) {
		a, _ := firing(hook, "/security", "theft-1")
		b, _ := firing(hook, "/sre", "churn-1")
		return a >= 1 && b >= 1, fmt.Sprintf("%d, %d; %d notifications", a, b, len(hook.Notifications()))
	})
	testenv.WaitFor(t, time.Minute, "the theft resolved", func() (bool, string) {
		return resolved(hook, "/security", "theft-1"), fmt.Sprint(len(hook.Notifications()), " notifications")
	})
	n, ann := firing(hook, "/security", "theft-1")
	if n != 1 {
		t.Errorf("%d firing notifications of the theft, want exactly 1", n)
	}
	for _, k := range []string{"summary", "description", "runbook_url", "anomaly_id", "action"} {
		if ann[k] == "" {
			t.Errorf("annotation %s missing: %v", k, ann)
		}
	}
	if !strings.Contains(ann["description"], "vigil's action: revoke_family requested") {
		t.Errorf("description %q lacks the action", ann["description"])
	}
	if n, _ := firing(hook, "/sre", "theft-1"); n != 0 {
		t.Error("the theft reached the SRE receiver")
	}
	if n, _ := firing(hook, "/security", "churn-1"); n != 0 {
		t.Error("the churn reached the security receiver")
	}
}

// TestAlertmanagerDownThenBack is acceptance point 2: Alertmanager down
// for a minute; alerts raised meanwhile arrive once it is back (vigil kept
// retrying), each notified once.
func TestAlertmanagerDownThenBack(t *testing.T) {
	t.Parallel() // a minute of outage overlaps the other tests
	hook := testenv.StartWebhook(t)
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerConfig(t, exampleConfig, hook, time.Second))
	c := testConfig(am)
	c.Hold = 3 * time.Minute // longer than the outage
	m := alerts.NewMetrics(nil)
	s := startSender(t, c, alerts.Options{Metrics: m})
	am.Stop(t)
	stopped := time.Now()
	now := time.Now()
	var as []detect.Anomaly
	for i := range 3 {
		as = append(as, anomalyAt(fmt.Sprint("down-", i), "token_reuse", "replay_other_client", now))
	}
	_ = s.Handle(context.Background(), as)
	host := strings.TrimPrefix(am.URL, "http://")
	testenv.WaitFor(t, 2*time.Minute, "a minute of failed posts while Alertmanager is down", func() (bool, string) {
		n := testutil.ToFloat64(m.Errors.WithLabelValues(host))
		return n >= 10 && time.Since(stopped) >= time.Minute, fmt.Sprint(n, " failed posts in ", time.Since(stopped).Round(time.Second))
	})
	am.Start(t)
	testenv.WaitFor(t, time.Minute, "the alerts raised during the outage delivered", func() (bool, string) {
		got := 0
		for _, a := range as {
			if n, _ := firing(hook, "/security", a.ID); n > 0 {
				got++
			}
		}
		return got == len(as), fmt.Sprint(got, " of ", len(as))
	})
	// Resends go on every second; Alertmanager deduplicates them.
	testenv.WaitFor(t, time.Minute, "a few more resends", func() (bool, string) {
		n := testutil.ToFloat64(m.Sent.WithLabelValues(host))
		return n >= 4*float64(len(as)), fmt.Sprint(n, " sent")
	})
	for _, a := range as {
		if n, _ := firing(hook, "/security", a.ID); n != 1 {
			t.Errorf("%s notified %d times, want once", a.ID, n)
		}
	}
}

// TestRestartReloadsActiveOnly: a restarted sender reloads from ClickHouse
// the anomalies whose alerts are still active and not the resolved ones.
func TestRestartReloadsActiveOnly(t *testing.T) {
	_, conn, db := testenv.MigratedDatabase(t)
	now := time.Now()
	active, over := anomalyAt("still-active", "token_reuse", "replay_other_client", now), anomalyAt("long-over", "token_reuse", "replay_other_client", now.Add(-time.Hour))
	if err := ingest.NewClickHouseSink(conn, db).WriteAnomalies(context.Background(), []detect.Anomaly{active, over}); err != nil {
		t.Fatal(err)
	}
	c := alerts.DefaultConfig()
	c.Alertmanagers, c.AllowHTTP = []string{"http://127.0.0.1:1"}, true // unreachable: only the state matters
	s := startSender(t, c, alerts.Options{Active: alerts.ClickHouseActive(conn, db)})
	testenv.WaitFor(t, 30*time.Second, "the reload", func() (bool, string) {
		return len(s.Active()) > 0, "nothing active yet"
	})
	got := s.Active()
	if len(got) != 1 || got[0].Labels["anomaly_id"] != "still-active" || got[0].Labels["alertname"] != "VigilTokenReuse" {
		t.Errorf("active after reload: %+v, want only still-active", got)
	}
}

// TestAlertmanagerRestartAroundEndsAt: Alertmanager (which keeps alerts
// only in memory) is down when an alert's endsAt passes; once it is back,
// the resolved alert vigil still posts gets the resolve notified.
func TestAlertmanagerRestartAroundEndsAt(t *testing.T) {
	t.Parallel()
	hook := testenv.StartWebhook(t)
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerConfig(t, exampleConfig, hook, time.Second))
	c := testConfig(am)
	c.Hold = 5 * time.Second
	s := startSender(t, c, alerts.Options{})
	a := anomalyAt("restart-1", "token_reuse", "replay_other_client", time.Now())
	_ = s.Handle(context.Background(), []detect.Anomaly{a})
	testenv.WaitFor(t, time.Minute, "the alert notified", func() (bool, string) {
		n, _ := firing(hook, "/security", a.ID)
		return n == 1, fmt.Sprint(n, " firing notifications")
	})
	am.Stop(t)
	testenv.WaitFor(t, time.Minute, "the alert's endsAt passed while Alertmanager is down", func() (bool, string) {
		return len(s.Active()) == 0, "still firing"
	})
	am.Start(t)
	testenv.WaitFor(t, time.Minute, "the resolve notified after the restart", func() (bool, string) {
		return resolved(hook, "/security", a.ID), fmt.Sprint(len(hook.Notifications()), " notifications")
	})
	if n, _ := firing(hook, "/security", a.ID); n != 1 {
		t.Errorf("%d firing notifications, want 1", n)
	}
}
