package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Alertmanager is a running Debian prometheus-alertmanager.
type Alertmanager struct {
	// URL is its base URL, e.g. http://127.0.0.1:41234.
	URL string

	bin, config, dir, addr string
	cmd                    *exec.Cmd
	out                    bytes.Buffer
	done                   chan struct{}
}

// StartAlertmanager starts Alertmanager with the given configuration
// (YAML) on a free loopback port, with clustering off, and waits until it
// is ready; it is stopped when t ends. A missing binary skips t, or fails
// it under VIGIL_REQUIRE_SERVICES=1.
func StartAlertmanager(t testing.TB, config string) *Alertmanager {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if bin, err = exec.LookPath("alertmanager"); err != nil {
			Missing(t, "prometheus-alertmanager", err)
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	am := &Alertmanager{URL: "http://" + addr, bin: bin, config: cfg, dir: dir, addr: addr}
	t.Cleanup(func() { // registered first: a Start that fails still stops the process
		am.Stop(t)
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", am.out.String())
		}
	})
	am.Start(t)
	return am
}

// Start (re)starts the process on the same address and storage, and waits
// until it is ready.
func (am *Alertmanager) Start(t testing.TB) {
	t.Helper()
	am.cmd = exec.Command(am.bin, "--config.file="+am.config, "--storage.path="+filepath.Join(am.dir, "data"),
		"--web.listen-address="+am.addr, "--cluster.listen-address=", "--log.level=warn")
	am.cmd.Stdout, am.cmd.Stderr = &am.out, &am.out
	if err := am.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	am.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(am.cmd, am.done)
	WaitFor(t, 30*time.Second, "alertmanager ready", func() (bool, string) {
		resp, err := http.Get(am.URL + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// Stop stops the process (SIGTERM, then SIGKILL after 10 s); it is idempotent.
func (am *Alertmanager) Stop(t testing.TB) {
	t.Helper()
	if am.cmd == nil {
		return
	}
	_ = am.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-am.done:
	case <-time.After(10 * time.Second):
		_ = am.cmd.Process.Kill()
		<-am.done
	}
	am.cmd = nil
}

// Notification is one webhook notification Alertmanager delivered.
type Notification struct {
	// Receiver is the path the webhook was posted to, e.g. "/security".
	Receiver string
	// Status is firing or resolved.
	Status string `json:"status"`
	// Alerts are the notification's alerts.
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		EndsAt      time.Time         `json:"endsAt"`
	} `json:"alerts"`
}

// Webhook is a local receiver of Alertmanager webhook notifications.
type Webhook struct {
	// URL is its base URL; receivers post to URL + "/<name>".
	URL string

	mu   sync.Mutex
	seen []Notification
}

// StartWebhook starts a webhook receiver, closed when t ends.
func StartWebhook(t testing.TB) *Webhook {
	t.Helper()
	w := &Webhook{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n Notification
		if err := json.Unmarshal(b, &n); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		n.Receiver = r.URL.Path
		w.mu.Lock()
		w.seen = append(w.seen, n)
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	w.URL = srv.URL
	return w
}

// Notifications returns what has arrived so far.
func (w *Webhook) Notifications() []Notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Notification(nil), w.seen...)
}

// AlertmanagerConfig rewrites an Alertmanager configuration for a test:
// every webhook URL's scheme and host become the webhook's (the path, which
// names the receiver, stays), every group_wait becomes wait and every
// group_interval 5 × wait (at least 5 s), so notifications come at test
// speed (repeat_interval stays: a repeat is a second notification).
// Alertmanager bounds each notification attempt by the group_interval: at
// 1 s, a webhook slowed by a loaded machine times out after receiving the
// notification, and the retry delivers it twice.
func AlertmanagerConfig(t testing.TB, path string, hook *Webhook, wait time.Duration) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
		switch {
		case strings.HasPrefix(trimmed, "- url:") || strings.HasPrefix(trimmed, "url:"):
			u := strings.TrimSpace(strings.SplitN(trimmed, "url:", 2)[1])
			u = strings.Trim(u, `"'`)
			if i := strings.Index(u, "://"); i >= 0 {
				rest := u[i+3:]
				p := ""
				if j := strings.IndexByte(rest, '/'); j >= 0 {
					p = rest[j:]
				}
				prefix := strings.SplitN(line, "url:", 2)[0]
				line = prefix + "url: " + hook.URL + p
			}
		case strings.HasPrefix(trimmed, "group_wait:"):
			line = fmt.Sprintf("%sgroup_wait: %s", indent, wait)
		case strings.HasPrefix(trimmed, "group_interval:"):
			line = fmt.Sprintf("%sgroup_interval: %s", indent, max(5*wait, 5*time.Second))
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}
