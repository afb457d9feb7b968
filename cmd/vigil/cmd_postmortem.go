package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/postmortem"
	"github.com/vigilhq/vigil/schemas/queries"
	"github.com/vigilhq/vigil/slo"
)

func cmdTimeline() command {
	c := command{name: "timeline", summary: "one session's, family's, user's or address's events, anomalies and vigil's actions in time order", usage: `
Usage:
  vigil timeline (--session S | --family F | --user U | --ip A) [--from T1 --to T2]
                 [--format table|json|csv|md] [--gap 10m] [--config FILE]

Merges the subject's stored events with the anomalies about it and the
actions vigil took, in time order (ClickHouse: schemas/queries/timeline.sql,
through the event_subjects lookup table, not a scan of events). Silences of
at least --gap are marked, and every refresh that presented an already
exchanged token says how it was judged: theft (the anomaly's kind), after
theft detected, benign (the same client within the leeway), or reported by
the service. Times are RFC 3339 (or "2006-01-02 15:04:05" UTC); the window
defaults to the last 30 days.

Examples:
  vigil timeline --family fam_8a1c --from 2026-11-20T14:00:00Z --to 2026-11-20T16:00:00Z
  vigil timeline --user usr_42 --format md > usr_42.md
  vigil timeline --ip 203.0.113.50 --format csv`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		subjects := map[string]*string{}
		for _, k := range postmortem.Kinds {
			subjects[k] = fs.String(k, "", "the "+k+" to follow")
		}
		from := fs.String("from", "", "start of the window (RFC 3339); default 30 days before --to")
		to := fs.String("to", "", "end of the window (RFC 3339); default now")
		format := fs.String("format", "table", "table, json, csv or md")
		gap := fs.Duration("gap", 10*time.Minute, "mark silences at least this long")
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		if done, err := parseFlags(fs, args); done {
			return err
		}
		var kind, subject string
		for _, k := range postmortem.Kinds {
			if v := *subjects[k]; v != "" {
				if kind != "" {
					return errUsage("give one of --session, --family, --user, --ip")
				}
				kind, subject = k, v
			}
		}
		if kind == "" {
			return errUsage("give one of --session, --family, --user, --ip")
		}
		if kind == "ip" && !queries.ValidIP(subject) {
			return errUsage("--ip: %q is not an IP address", subject)
		}
		if !slices.Contains(postmortem.Formats, *format) {
			return errUsage("--format: %q is not one of %s", *format, strings.Join(postmortem.Formats, ", "))
		}
		t1, t2, err := postmortem.FromTo(*from, *to, time.Now())
		if err != nil {
			return errUsage("%v", err)
		}
		return withQueryConn(ctx, env, *path, func(ctx context.Context, q queryConn) error {
			// With privacy.key_file, stored ids are pseudonyms: look up
			// the clear id's (a pseudonym given as is stays as it is).
			k, err := q.cfg.Privacy.Key()
			if err != nil {
				return err
			}
			subject := k.Of(subject)
			es, err := postmortem.Timeline(ctx, q.conn, postmortem.TimelineOptions{Kind: kind, Subject: subject, From: t1, To: t2, Gap: *gap})
			if err != nil {
				return err
			}
			if len(es) == 0 && *format == "table" {
				fmt.Fprintf(env.stderr, "nothing stored for %s %s between %s and %s\n", kind, subject, t1.Format(time.RFC3339), t2.Format(time.RFC3339))
				return nil
			}
			return postmortem.WriteTimeline(env.stdout, es, *format)
		})
	}
	return c
}

func cmdIncident() command {
	c := command{name: "incident", summary: "a postmortem's starting point: what happened in a window, to whom, and what vigil did", usage: `
Usage:
  vigil incident --from T1 --to T2 [--tenant T] [--out report.md|report.html]
                 [--top 10] [--config FILE]

Builds a report over the window from ClickHouse: a timeline of the main
events; each kind of anomaly with its first offending event and detection
delay; revocations with their outcomes, guardrails and time to revoke;
sessions that stayed valid after revocation; exact SLIs and burn per SLO;
traffic by type; top addresses, networks and countries by failed logins;
the users, sessions and addresses affected; dead letters; and the
commands to drill down. Markdown goes to stdout, or to --out; a --out
ending in .html gets a self-contained page with inline SVG charts (events
per minute by type, failed login ratio, burn rate), readable offline.

Examples:
  vigil incident --from 2026-11-20T14:00:00Z --to 2026-11-20T16:00:00Z
  vigil incident --from 2026-11-20T14:00:00Z --to 2026-11-20T16:00:00Z --out INC-1234.html
  vigil incident --from "2026-11-20 14:00:00" --to "2026-11-20 16:00:00" --tenant acme --out acme.md`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		from := fs.String("from", "", "start of the window (RFC 3339), required")
		to := fs.String("to", "", "end of the window (RFC 3339), required")
		tenant := fs.String("tenant", "", "limit the report to one tenant (SLOs stay over all tenants)")
		out := fs.String("out", "", "write the report here: .md for Markdown, .html for HTML; default Markdown on stdout")
		top := fs.Int("top", 10, "how many sources and revocations to list")
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		if done, err := parseFlags(fs, args); done {
			return err
		}
		if *from == "" || *to == "" {
			return errUsage("--from and --to are required")
		}
		t1, t2, err := postmortem.FromTo(*from, *to, time.Now())
		if err != nil {
			return errUsage("%v", err)
		}
		ext := strings.ToLower(filepath.Ext(*out))
		if *out != "" && ext != ".md" && ext != ".html" && ext != ".htm" {
			return errUsage("--out: %q must end in .md or .html", *out)
		}
		if *top < 1 {
			return errUsage("--top must be at least 1")
		}
		return withQueryConn(ctx, env, *path, func(ctx context.Context, q queryConn) error {
			specs, err := slo.Configured(q.cfg.SLO.SpecFile)
			if err != nil {
				return err
			}
			inc, err := postmortem.BuildIncident(ctx, q.conn, postmortem.IncidentOptions{From: t1, To: t2, Tenant: *tenant,
				Database: q.cfg.ClickHouse.Database, SLOs: specs, Top: *top, Grace: q.cfg.Detect.UseAfterRevocation.Grace})
			if err != nil {
				return err
			}
			if *out == "" {
				return inc.WriteMarkdown(env.stdout, *top)
			}
			return writeReport(inc, *out, *top, env)
		})
	}
	return c
}

// writeReport writes inc to path (Markdown or HTML by extension) through
// a temporary file, so a failed write leaves no half report.
func writeReport(inc postmortem.Incident, path string, top int, env *cmdEnv) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".incident-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if strings.HasSuffix(strings.ToLower(path), ".md") {
		err = inc.WriteMarkdown(f, top)
	} else {
		err = inc.WriteHTML(f, top)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "wrote %s: %s\n", path, inc.Headline())
	return nil
}

func cmdQuery() command {
	c := command{name: "query", summary: "run one of the named postmortem queries (schemas/queries) with bound parameters", usage: `
Usage:
  vigil query --list
  vigil query NAME [--param name=value ...] [--format table|json|csv|md] [--config FILE]

Runs a named query from schemas/queries on vigil's database, its
parameters bound (never spliced into the SQL). The same files run as they
are with clickhouse-client on current ClickHouse:
  clickhouse-client -d vigil --param_ip=203.0.113.50 --param_from='2026-11-20 14:00:00' \
      --param_to='2026-11-20 16:00:00' --queries-file schemas/queries/ip_sightings.sql

Examples:
  vigil query --list
  vigil query ip_sightings --param ip=203.0.113.50 --param from=2026-11-20T14:00:00Z --param to=2026-11-20T16:00:00Z
  vigil query valid_after_revocation --param from=2026-11-20T00:00:00Z --param to=2026-11-21T00:00:00Z --param grace_ms=5000 --format csv`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		name := ""
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			name, args = args[0], args[1:]
		}
		fs := newFlags(&c, env)
		list := fs.Bool("list", false, "list the named queries and their parameters")
		var params paramFlags
		fs.Var(&params, "param", "a parameter, name=value (repeatable)")
		format := fs.String("format", "table", "table, json, csv or md")
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		if done, err := parseFlags(fs, args); done {
			return err
		}
		if *list {
			all, err := queries.All()
			if err != nil {
				return err
			}
			for _, q := range all {
				fmt.Fprintf(env.stdout, "%s\n    %s\n", q.Name, q.Doc)
				for _, p := range q.Params {
					fmt.Fprintf(env.stdout, "    --param %s=…  (%s) %s\n", p.Name, p.Type, p.Doc)
				}
			}
			return nil
		}
		if name == "" {
			return errUsage("usage: vigil query NAME [--param name=value ...] (vigil query --list names them)")
		}
		q, err := queries.Get(name)
		if err != nil {
			return errUsage("%v", err)
		}
		if _, _, err := q.Bind(params); err != nil {
			return errUsage("%v", err)
		}
		if !slices.Contains(postmortem.Formats, *format) {
			return errUsage("--format: %q is not one of %s", *format, strings.Join(postmortem.Formats, ", "))
		}
		return withQueryConn(ctx, env, *path, func(ctx context.Context, qc queryConn) error {
			t, err := postmortem.Run(ctx, qc.conn, name, params)
			if err != nil {
				return err
			}
			return t.Write(env.stdout, *format)
		})
	}
	return c
}

// paramFlags is the repeatable --param name=value flag.
type paramFlags map[string]string

func (p *paramFlags) String() string { return fmt.Sprint(map[string]string(*p)) }

func (p *paramFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	if *p == nil {
		*p = paramFlags{}
	}
	if _, dup := (*p)[k]; dup {
		return fmt.Errorf("parameter %s given twice", k)
	}
	(*p)[k] = v
	return nil
}

// queryConn is a connection whose default database is vigil's, for the
// named queries, with the config it came from.
type queryConn struct {
	conn driver.Conn
	cfg  *config.Config
}

// withQueryConn loads the config, connects with vigil's database as the
// default, and runs f with a bound on the whole command.
func withQueryConn(ctx context.Context, env *cmdEnv, path string, f func(context.Context, queryConn) error) error {
	env.warnUnknownEnv()
	cfg, err := config.Load(path, env.getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := openClickHouseIn(ctx, cfg.ClickHouse, env.getenv, cfg.ClickHouse.Database)
	if err != nil {
		return err
	}
	defer conn.Close()
	return f(ctx, queryConn{conn: conn, cfg: cfg})
}
