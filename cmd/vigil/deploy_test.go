package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vigilhq/vigil/internal/config"
)

// TestDeployConsistent parses every deployment file (the compose stack,
// the Kubernetes manifests, the Dockerfile) and checks them against this
// binary: vigil's commands and flags exist, every VIGIL_* variable is a
// config key's, the admin port is the same wherever it appears, probes and
// scrapes use the admin server's paths, rule files and dashboards are where
// the mounts say.
func TestDeployConsistent(t *testing.T) {
	const root = "../../"
	known := map[string]bool{config.ClickHousePasswordEnv: true}
	for _, v := range config.EnvVars() {
		known[v.Name] = true
	}
	adminPaths := []string{"/healthz", "/readyz", "/metrics"}
	var adminPort string // from the first VIGIL_ADMIN_LISTEN seen

	checkInvocation := func(where string, args []string) {
		t.Helper()
		if len(args) == 0 {
			t.Errorf("%s: vigil without a command", where)
			return
		}
		help, _, err := run(t, nil, args[0], "--help")
		if err != nil {
			t.Errorf("%s: vigil %s: not a command (%v)", where, args[0], err)
			return
		}
		for _, a := range args[1:] {
			if name, ok := strings.CutPrefix(a, "--"); ok {
				name, _, _ = strings.Cut(name, "=")
				if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).MatchString(help) {
					t.Errorf("%s: vigil %s has no flag --%s", where, args[0], name)
				}
			}
		}
	}
	checkEnv := func(where, name, value string) {
		t.Helper()
		if !strings.HasPrefix(name, "VIGIL_") {
			return
		}
		if !known[name] {
			t.Errorf("%s: %s is not the variable of any config key", where, name)
		}
		if name == "VIGIL_ADMIN_LISTEN" {
			_, port, err := net.SplitHostPort(value)
			switch {
			case err != nil:
				t.Errorf("%s: VIGIL_ADMIN_LISTEN=%q: %v", where, value, err)
			case adminPort == "":
				adminPort = port
			case port != adminPort:
				t.Errorf("%s: admin port %s, elsewhere %s", where, port, adminPort)
			}
		}
	}
	samePort := func(where, port string) {
		t.Helper()
		if port != adminPort {
			t.Errorf("%s: port %s, the admin listener's is %s", where, port, adminPort)
		}
	}

	// The compose stack.
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	readYAML(t, root+"deploy/compose/compose.yaml", &compose)
	vigils := 0
	for _, name := range []string{"vigil", "simulator"} {
		s, ok := compose.Services[name]
		if !ok || s.Image != "vigil:local" {
			t.Errorf("compose: service %s is not the vigil image (%q)", name, s.Image)
			continue
		}
		vigils++
		checkInvocation("compose "+name, s.Command)
		for k, v := range s.Environment {
			checkEnv("compose "+name, k, v)
		}
	}
	if vigils == 0 || adminPort == "" {
		t.Fatal("compose: no vigil service with VIGIL_ADMIN_LISTEN")
	}
	if p := compose.Services["vigil"].Ports; len(p) != 1 || !strings.HasSuffix(p[0], ":"+adminPort) {
		t.Errorf("compose vigil: ports %v do not publish the admin port %s", p, adminPort)
	}
	for _, name := range []string{"kafka", "topics", "clickhouse", "prometheus", "alertmanager", "grafana"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("compose: no %s service", name)
		}
	}
	// Mounts: every host path exists.
	for name, s := range compose.Services {
		for _, v := range s.Volumes {
			host, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(host, ".") {
				if _, err := os.Stat(filepath.Join(root, "deploy/compose", host)); err != nil {
					t.Errorf("compose %s: mount %s: %v", name, v, err)
				}
			}
		}
	}

	// Prometheus scrapes the admin port and loads rule files that exist.
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, root+"deploy/compose/prometheus/prometheus.yml", &prom)
	for _, f := range prom.RuleFiles {
		rel, ok := strings.CutPrefix(f, "/etc/prometheus/rules/")
		if _, err := os.Stat(filepath.Join(root, "alerts/rules", rel)); !ok || err != nil {
			t.Errorf("prometheus: rule file %s is not one of alerts/rules (mounted at /etc/prometheus/rules): %v", f, err)
		}
	}
	if len(prom.ScrapeConfigs) != 1 || prom.ScrapeConfigs[0].MetricsPath != "/metrics" || len(prom.ScrapeConfigs[0].StaticConfigs) != 1 {
		t.Fatalf("prometheus: want one scrape of /metrics: %+v", prom.ScrapeConfigs)
	}
	for _, target := range prom.ScrapeConfigs[0].StaticConfigs[0].Targets {
		host, port, _ := net.SplitHostPort(target)
		if _, ok := compose.Services[host]; !ok {
			t.Errorf("prometheus: target %s is no compose service", target)
		}
		samePort("prometheus target "+target, port)
	}
	// Grafana's dashboards mount is where the provisioning looks.
	var dp struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, root+"deploy/grafana/provisioning/dashboards/vigil.yaml", &dp)
	if len(dp.Providers) != 1 || !slices.ContainsFunc(compose.Services["grafana"].Volumes, func(v string) bool {
		return strings.HasSuffix(v, "dashboards/json:"+dp.Providers[0].Options.Path+":ro")
	}) {
		t.Errorf("grafana: dashboards/json is not mounted where the provisioning looks (%+v)", dp.Providers)
	}

	// Kubernetes.
	docs := readYAMLDocs(t, root+"deploy/kubernetes/vigil.yaml")
	kinds := map[string]map[string]any{}
	for _, d := range docs {
		kinds[str(d, "kind")] = d
	}
	for _, k := range []string{"Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"} {
		if kinds[k] == nil {
			t.Fatalf("kubernetes: no %s", k)
		}
	}
	labels := dig(kinds["Deployment"], "spec", "template", "metadata", "labels")
	for _, k := range []string{"Deployment", "PodDisruptionBudget"} {
		if sel := dig(kinds[k], "spec", "selector", "matchLabels"); !mapsEqual(sel, labels) {
			t.Errorf("kubernetes %s: selector %v does not match the pod labels %v", k, sel, labels)
		}
	}
	if sel := dig(kinds["Service"], "spec", "selector"); !mapsEqual(sel, labels) {
		t.Errorf("kubernetes Service: selector %v does not match the pod labels %v", sel, labels)
	}
	containers, _ := dig(kinds["Deployment"], "spec", "template", "spec", "containers").([]any)
	if len(containers) != 1 {
		t.Fatalf("kubernetes: want one container, got %d", len(containers))
	}
	c := containers[0].(map[string]any)
	var args []string
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	checkInvocation("kubernetes", args)
	for _, e := range c["env"].([]any) {
		e := e.(map[string]any)
		checkEnv("kubernetes", str(e, "name"), str(e, "value"))
	}
	portNames := map[string]string{}
	for _, p := range c["ports"].([]any) {
		p := p.(map[string]any)
		portNames[str(p, "name")] = str(p, "containerPort")
	}
	samePort("kubernetes containerPort admin", portNames["admin"])
	for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
		path, port := str(dig(c, probe, "httpGet"), "path"), str(dig(c, probe, "httpGet"), "port")
		if !slices.Contains(adminPaths, path) || portNames[port] == "" {
			t.Errorf("kubernetes %s: %s on port %q is not an admin endpoint", probe, path, port)
		}
	}
	svcPorts := map[string]bool{}
	for _, p := range dig(kinds["Service"], "spec", "ports").([]any) {
		p := p.(map[string]any)
		svcPorts[str(p, "name")] = true
		samePort("kubernetes Service port", str(p, "port"))
		if portNames[str(p, "targetPort")] == "" {
			t.Errorf("kubernetes Service: targetPort %s is no container port", str(p, "targetPort"))
		}
	}
	for _, ep := range dig(kinds["ServiceMonitor"], "spec", "endpoints").([]any) {
		ep := ep.(map[string]any)
		if !svcPorts[str(ep, "port")] || str(ep, "path") != "/metrics" {
			t.Errorf("kubernetes ServiceMonitor: endpoint %v is not the Service's admin port and /metrics", ep)
		}
	}

	// The Dockerfile runs a command of this binary and exposes the admin port.
	df, err := os.ReadFile(root + "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(df), "\n") {
		if rest, ok := strings.CutPrefix(l, "EXPOSE "); ok {
			samePort("Dockerfile EXPOSE", strings.TrimSpace(rest))
		}
		if rest, ok := strings.CutPrefix(l, "CMD "); ok {
			var cmd []string
			if err := yaml.Unmarshal([]byte(rest), &cmd); err != nil {
				t.Errorf("Dockerfile CMD %s: %v", rest, err)
			}
			checkInvocation("Dockerfile CMD", cmd)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readYAMLDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			return docs
		} else if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(docs)+1, err)
		}
		docs = append(docs, d)
	}
}

// dig walks nested mappings by key; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// str returns a mapping's value as a string ("" when missing).
func str(v any, key string) string {
	m, ok := v.(map[string]any)
	if !ok || m[key] == nil {
		return ""
	}
	if s, ok := m[key].(string); ok {
		return s
	}
	b, _ := yaml.Marshal(m[key])
	return strings.TrimSpace(string(b))
}

func mapsEqual(a, b any) bool {
	x, _ := yaml.Marshal(a)
	y, _ := yaml.Marshal(b)
	return a != nil && bytes.Equal(x, y)
}
