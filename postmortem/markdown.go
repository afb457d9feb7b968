package postmortem

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// section is one table of the report: its title, what it shows, the
// query behind it and its rows for people.
type section struct {
	ID, Title, About, Query string
	Cols                    []string
	Rows                    [][]string
}

// sections are the report's tables in order, shared by Markdown and HTML.
func (inc Incident) sections(top int) []section {
	if top <= 0 {
		top = 10
	}
	var out []section
	fs := section{ID: "findings", Title: "What vigil found", Query: "incident_anomalies",
		About: "Anomalies by kind, with the first offending event, when vigil first detected it, and how long detection took.",
		Cols:  []string{"finding", "detector/kind", "anomalies", "worst", "first event", "first detected", "detection p50", "detection max", "users", "sessions", "families", "IPs"}}
	for _, f := range inc.Findings {
		fs.Rows = append(fs.Rows, []string{f.Name, f.Detector + "/" + f.Kind, u(f.Count), f.Severity, Text(f.FirstEvent), Text(f.FirstDetected),
			ms(f.DetectP50), ms(f.DetectMax), u(f.Users), u(f.Sessions), u(f.Families), u(f.IPs)})
	}
	out = append(out, fs)
	out = append(out, tableSection("revocations", "Revocations", "vigil's revocation decisions by action, scope and outcome (or the guardrail that stopped them): whom they reached and the time from the first offending event to the session service's acknowledgement.", inc.BlastRadius, 0))
	out = append(out, tableSection("revocation-list", "Revocations, one by one", fmt.Sprintf("The first %d decisions in time order.", top), inc.Revocations, top))
	if len(inc.ValidAfterRevocation.Rows) > 0 {
		out = append(out, tableSection("valid-after-revocation", "Sessions still valid after revocation", fmt.Sprintf("Successful validations more than %s after the session's revocation: revocations the session service did not enforce.", inc.Grace), inc.ValidAfterRevocation, top))
	}
	if len(inc.SLOs.SLOs) > 0 {
		s := section{ID: "slos", Title: "SLOs", Query: "vigil slo report",
			About: "Exact SLIs over the window from the stored events (all tenants): the burn rate is the error ratio over the error budget (1× spends it exactly over the SLO period).",
			Cols:  []string{"SLO", "objective", "SLI", "burn rate", "budget spent", "bad", "events"}}
		for _, r := range inc.SLOs.SLOs {
			sli, burn, spent := "no events", "", ""
			if r.SLI != nil {
				sli = strconv.FormatFloat(*r.SLI, 'f', 3, 64) + "%"
			}
			if r.BurnRate != nil {
				burn = strconv.FormatFloat(*r.BurnRate, 'f', 2, 64) + "×"
			}
			if r.BudgetConsumed != nil {
				spent = strconv.FormatFloat(*r.BudgetConsumed*100, 'f', 1, 64) + "%"
			}
			s.Rows = append(s.Rows, []string{r.Name, strconv.FormatFloat(r.Objective, 'f', -1, 64) + "%", sli, burn, spent,
				strconv.FormatFloat(r.Bad, 'f', 0, 64), strconv.FormatFloat(r.Good+r.Bad, 'f', 0, 64)})
		}
		out = append(out, s)
	}
	out = append(out, tableSection("traffic", "Traffic", "Events in the window by type.", inc.Events, 0))
	out = append(out, tableSection("top-ips", "Failed logins by address", "", inc.TopIPs, top))
	out = append(out, tableSection("top-asns", "Failed logins by network (ASN)", "", inc.TopASNs, top))
	out = append(out, tableSection("top-countries", "Failed logins by country", "", inc.TopCountries, top))
	out = append(out, tableSection("affected", "Users, sessions and addresses affected", fmt.Sprintf("Subjects the anomalies named (the first %d), and whether vigil revoked them.", 3*top), inc.Affected, 3*top))
	out = append(out, tableSection("dead-letters", "Dead letters", "Messages vigil refused, by reason (all tenants: a refused message has none).", inc.DeadLetters, 0))
	return out
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func tableSection(id, title, about string, t Table, limit int) section {
	s := section{ID: id, Title: title, About: about, Query: t.Query, Cols: t.Columns}
	for i, r := range t.Rows {
		if limit > 0 && i == limit {
			break
		}
		s.Rows = append(s.Rows, oneLine(texts(r)))
	}
	return s
}

// title is the report's title.
func (inc Incident) title() string {
	t := fmt.Sprintf("Incident report: %s to %s UTC", inc.From.Format(time.DateTime), inc.To.Format(time.DateTime))
	if inc.Tenant != "" {
		t += ", tenant " + inc.Tenant
	}
	return t
}

// WriteMarkdown writes the report as Markdown; top bounds the lists.
func (inc Incident) WriteMarkdown(w io.Writer, top int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n%s\n\n## Timeline\n\n", inc.title(), inc.Headline())
	rows := make([][]string, len(inc.Moments))
	for i, m := range inc.Moments {
		rows[i] = []string{m.Time.Format("15:04:05.000"), m.What}
	}
	if len(rows) == 0 {
		b.WriteString("Nothing notable.\n")
	} else if err := writeMarkdownTable(&b, []string{"time (UTC)", "what"}, rows); err != nil {
		return err
	}
	for _, s := range inc.sections(top) {
		fmt.Fprintf(&b, "\n## %s\n\n", s.Title)
		if s.About != "" {
			b.WriteString(s.About + "\n\n")
		}
		if len(s.Rows) == 0 {
			b.WriteString("None.\n")
		} else if err := writeMarkdownTable(&b, s.Cols, s.Rows); err != nil {
			return err
		}
		fmt.Fprintf(&b, "\n_Query: `%s`._\n", s.Query)
	}
	b.WriteString("\n## Drill down\n\n")
	for _, c := range inc.drillDown() {
		fmt.Fprintf(&b, "- `%s`\n", c)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// drillDown are the commands that follow the report's main subjects.
func (inc Incident) drillDown() []string {
	window := fmt.Sprintf("--from %s --to %s", inc.From.Format(time.RFC3339), inc.To.Format(time.RFC3339))
	var out []string
	seen := map[string]bool{}
	for _, r := range inc.Affected.Rows {
		kind, subject := Text(r[inc.Affected.Col("kind")]), Text(r[inc.Affected.Col("subject")])
		if kind == "user" || seen[kind] {
			continue
		}
		seen[kind] = true
		out = append(out, fmt.Sprintf("vigil timeline --%s %s %s", kind, subject, window))
	}
	return append(out, "vigil slo report "+window)
}
