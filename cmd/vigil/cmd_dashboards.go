package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilhq/vigil/dashboards"
	"github.com/vigilhq/vigil/dashboards/provision"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/secretfile"
	"github.com/vigilhq/vigil/internal/tlsclient"
)

func cmdDashboards() command {
	c := command{name: "dashboards", summary: "generate vigil's Grafana dashboards as JSON, or provision them (and their datasources) through Grafana's API", usage: `
Usage:
  vigil dashboards generate [--out DIR]
  vigil dashboards push --grafana-url URL --token-file FILE [--folder UID] [--folder-title TITLE]
                        [--prometheus-url URL] [--config FILE] [--ca-file FILE]
                        [--clickhouse-user USER --clickhouse-password-file FILE]

generate writes one JSON file per dashboard (vigil-slo, vigil-security,
vigil-pipeline, vigil-session) to DIR, as committed in dashboards/json, for
Grafana's file provisioning (deploy/grafana).

push creates or updates, idempotently, through Grafana's HTTP API with a
service-account token (Editor, or write access to the folder and
datasources):
  - the folder (--folder, default vigil);
  - the datasources "vigil Prometheus" (--prometheus-url) and "vigil
    ClickHouse" (from the config's clickhouse section: first address,
    database, TLS and its CA; as user, --clickhouse-user, which should be
    a read-only one, or else vigil's own; the password goes to
    secureJsonData, never to logs);
  - the dashboards.
It prints what it created, updated or left unchanged; a second push with
nothing changed writes nothing. Grafana never returns secrets, so a
rotated password alone is not noticed: push with --rewrite-secrets then.

Examples:
  vigil dashboards generate --out dashboards/json
  vigil dashboards push --grafana-url https://grafana.example.com --token-file /run/secrets/grafana-token \
      --prometheus-url http://prometheus:9090 --config /etc/vigil/vigil.yaml`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		if len(args) == 0 || (args[0] != "generate" && args[0] != "push") {
			if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
				newFlags(&c, env).Usage()
				return nil
			}
			return errUsage("usage: vigil dashboards generate|push [flags]")
		}
		sub := args[0]
		fs := newFlags(&c, env)
		out := fs.String("out", ".", "generate: directory to write the dashboards' JSON to")
		grafanaURL := fs.String("grafana-url", "", "push: Grafana's base URL, e.g. https://grafana.example.com")
		tokenFile := fs.String("token-file", "", "push: file holding a Grafana service-account token")
		folder := fs.String("folder", "vigil", "push: uid of the folder the dashboards go in")
		folderTitle := fs.String("folder-title", "vigil", "push: title of that folder")
		promURL := fs.String("prometheus-url", "http://prometheus:9090", "push: URL Grafana reaches Prometheus at")
		path := fs.String("config", "", "push: vigil config file (YAML) for the ClickHouse datasource; empty means defaults plus environment")
		caFile := fs.String("ca-file", "", "push: PEM CA bundle to trust for Grafana instead of the system roots")
		timeout := fs.Duration("timeout", 30*time.Second, "push: bound on each request to Grafana")
		chUser := fs.String("clickhouse-user", "", "push: ClickHouse user Grafana queries as (create a read-only one); empty means vigil's own clickhouse.username")
		rewriteSecrets := fs.Bool("rewrite-secrets", false, "push: send the datasources' secrets even when nothing else changed (after rotating a password: Grafana never returns secrets to compare)")
		chPasswordFile := fs.String("clickhouse-password-file", "", "push: file holding --clickhouse-user's password")
		if done, err := parseFlags(fs, args[1:]); done {
			return err
		}
		gs, err := dashboards.All()
		if err != nil {
			return err
		}
		if sub == "generate" {
			return generateDashboards(env, gs, *out)
		}
		switch {
		case *grafanaURL == "":
			return errUsage("vigil dashboards push: --grafana-url is required")
		case *tokenFile == "":
			return errUsage("vigil dashboards push: --token-file is required (a Grafana service-account token)")
		}
		if u, err := url.Parse(*grafanaURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return errUsage("vigil dashboards push: --grafana-url must be an http(s) URL, got %q", *grafanaURL)
		}
		if u, err := url.Parse(*promURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return errUsage("vigil dashboards push: --prometheus-url must be an http(s) URL, got %q", *promURL)
		}
		token, err := secretfile.Read("--token-file", *tokenFile)
		if err != nil {
			return err
		}
		env.warnUnknownEnv()
		cfg, err := config.Load(*path, env.getenv)
		if err != nil {
			return err
		}
		if *chPasswordFile != "" && *chUser == "" {
			return errUsage("vigil dashboards push: --clickhouse-password-file needs --clickhouse-user")
		}
		reader := readerCreds{user: *chUser}
		if *chPasswordFile != "" {
			if reader.password, err = secretfile.Read("--clickhouse-password-file", *chPasswordFile); err != nil {
				return err
			}
		}
		ds, err := datasources(cfg, reader, *promURL, env.getenv)
		if err != nil {
			return err
		}
		tc, err := tlsclient.Config{CAFile: *caFile}.Build("--ca-file")
		if err != nil {
			return err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		defer tr.CloseIdleConnections()
		dbs := make([]provision.Dashboard, 0, len(gs))
		for _, g := range gs {
			b, err := g.JSON()
			if err != nil {
				return err
			}
			dbs = append(dbs, provision.Dashboard{UID: g.UID, Title: g.Title, JSON: b})
		}
		res, err := provision.Push(ctx, provision.Target{
			URL: *grafanaURL, Token: token, FolderUID: *folder, FolderTitle: *folderTitle, RewriteSecrets: *rewriteSecrets,
			HTTPClient: &http.Client{Transport: tr, Timeout: *timeout},
		}, ds, dbs)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "folder\t%s\t%s\n", *folder, res.Folder)
		for _, d := range ds {
			fmt.Fprintf(w, "datasource\t%s\t%s\n", d.UID, res.Datasources[d.UID])
		}
		for _, d := range dbs {
			fmt.Fprintf(w, "dashboard\t%s\t%s\n", d.UID, res.Dashboards[d.UID])
		}
		return w.Flush()
	}
	return c
}

func generateDashboards(env *cmdEnv, gs []dashboards.Generated, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("dashboards: %w", err)
	}
	for _, g := range gs {
		b, err := g.JSON()
		if err != nil {
			return err
		}
		p := filepath.Join(dir, g.UID+".json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("dashboards: %w", err)
		}
		fmt.Fprintf(env.stdout, "wrote %s (%d panels)\n", p, len(dashboards.Panels(g.Model)))
	}
	return nil
}

// readerCreds is the ClickHouse user Grafana queries as; empty means
// vigil's own.
type readerCreds struct{ user, password string }

// datasources are the two datasources push provisions: Prometheus at
// promURL, ClickHouse as vigil's config reaches it (first address, TLS and
// its CA) with the reader's credentials or else vigil's. vigil's client
// certificate is not handed to Grafana.
func datasources(cfg *config.Config, reader readerCreds, promURL string, getenv func(string) (string, bool)) ([]provision.Datasource, error) {
	ch := cfg.ClickHouse
	if len(ch.Addr) == 0 {
		return nil, fmt.Errorf("clickhouse.addr: no ClickHouse address for the Grafana datasource")
	}
	host, portStr, err := net.SplitHostPort(ch.Addr[0])
	if err != nil {
		return nil, fmt.Errorf("clickhouse.addr: %q: %w", ch.Addr[0], err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("clickhouse.addr: %q: bad port", ch.Addr[0])
	}
	user, password := reader.user, reader.password
	if user == "" {
		user = ch.Username
		if password, err = ch.Password(getenv); err != nil {
			return nil, err
		}
	}
	jsonData := map[string]any{
		"host": host, "port": port, "protocol": "native", "secure": ch.TLS.Enabled,
		"username": user, "defaultDatabase": ch.Database,
	}
	secure := map[string]string{}
	if password != "" {
		secure["password"] = password
	}
	if ch.TLS.Enabled && ch.TLS.InsecureSkipVerify {
		jsonData["tlsSkipVerify"] = true
	}
	if ch.TLS.Enabled && ch.TLS.CAFile != "" {
		ca, err := os.ReadFile(ch.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("clickhouse.tls.ca_file: %w", err)
		}
		jsonData["tlsAuthWithCACert"] = true
		secure["tlsCACert"] = string(ca)
	}
	if len(secure) == 0 {
		secure = nil
	}
	return []provision.Datasource{
		{UID: dashboards.PrometheusUID, Name: dashboards.PrometheusName, Type: dashboards.PrometheusType, URL: strings.TrimRight(promURL, "/"), Access: "proxy",
			JSONData: map[string]any{"httpMethod": "POST", "timeInterval": "15s"}},
		{UID: dashboards.ClickHouseUID, Name: dashboards.ClickHouseName, Type: dashboards.ClickHouseType, Access: "proxy",
			JSONData: jsonData, SecureJSONData: secure},
	}, nil
}
