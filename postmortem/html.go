package postmortem

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"time"

	"github.com/go-analyze/charts"
)

// Chart is one inline SVG chart of the HTML report.
type Chart struct {
	Title, About string
	// SVG is the chart, rendered by go-analyze/charts (text escaped).
	SVG template.HTML
}

// charts renders the report's charts: events per step by type, the
// failed-login ratio, and each SLO's burn rate.
func (inc Incident) charts() ([]Chart, error) {
	step := inc.Step
	if step <= 0 {
		step = time.Minute
	}
	var steps []time.Time
	for t := inc.From.Truncate(step); !t.After(inc.To); t = t.Add(step) {
		steps = append(steps, t)
	}
	if len(steps) < 2 {
		return nil, nil
	}
	index := func(t time.Time) int {
		i := int(t.Sub(steps[0]) / step)
		return min(max(i, 0), len(steps)-1)
	}
	layout := "15:04"
	if step < time.Minute {
		layout = "15:04:05"
	}
	labels := make([]string, len(steps))
	for i, t := range steps {
		labels[i] = t.Format(layout)
	}
	pm := inc.OverTime
	byType := map[string][]float64{}
	failed, logins := make([]float64, len(steps)), make([]float64, len(steps))
	for _, r := range pm.Rows {
		typ, i, n := Text(r[pm.Col("type")]), index(tm(r[pm.Col("step_start")])), f64(r[pm.Col("events")])
		if byType[typ] == nil {
			byType[typ] = make([]float64, len(steps))
		}
		byType[typ][i] += n
		switch typ {
		case "login.failed":
			failed[i] += n
		case "session.created":
			logins[i] += n
		}
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	slices.Sort(types)
	var out []Chart
	render := func(title, about string, names []string, values [][]float64) error {
		if len(values) == 0 {
			return nil
		}
		p, err := charts.LineRender(values, charts.SVGOutputOptionFunc(), charts.DimensionsOptionFunc(960, 320),
			charts.XAxisOptionFunc(charts.XAxisOption{Labels: labels, Unit: math.Ceil(float64(len(labels)) / 8)}),
			charts.LegendLabelsOptionFunc(names))
		if err != nil {
			return fmt.Errorf("postmortem: chart %q: %w", title, err)
		}
		b, err := p.Bytes()
		if err != nil {
			return fmt.Errorf("postmortem: chart %q: %w", title, err)
		}
		out = append(out, Chart{Title: title, About: about, SVG: template.HTML(b)}) // #nosec G203 -- the library escapes every text it draws
		return nil
	}
	values := make([][]float64, len(types))
	for i, t := range types {
		values[i] = byType[t]
	}
	if err := render("Events per "+step.String()+" by type", "Every stored event, by type.", types, values); err != nil {
		return nil, err
	}
	ratio := make([]float64, len(steps))
	for i := range steps {
		if failed[i]+logins[i] > 0 {
			ratio[i] = failed[i] / (failed[i] + logins[i])
		}
	}
	if err := render("Failed login ratio", "login.failed / (login.failed + session.created) per "+step.String()+".", []string{"failed login ratio"}, [][]float64{ratio}); err != nil {
		return nil, err
	}
	var names []string
	values = nil
	for _, s := range inc.Burn {
		v := make([]float64, len(steps))
		for _, p := range s.Points {
			v[index(p.Start)] = p.BurnRate
		}
		names = append(names, s.Name)
		values = append(values, v)
	}
	if err := render("SLO burn rate", "Each SLO's error ratio per "+step.String()+" over its error budget; 1× spends the budget exactly over the SLO period.", names, values); err != nil {
		return nil, err
	}
	return out, nil
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
p.headline { font-size: 1.05rem; background: #f4f6fa; padding: .75rem 1rem; border-left: 4px solid #5470c6; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f6fa; }
td.when { white-space: nowrap; font-variant-numeric: tabular-nums; }
.about, .query { color: #555; font-size: .85rem; }
figure { margin: 1rem 0; } figure svg { width: 100%; height: auto; max-width: 960px; }
code { background: #f4f6fa; padding: 0 .25rem; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="headline">{{.Headline}}</p>
<h2 id="timeline">Timeline</h2>
{{if .Moments}}<table><tr><th>time (UTC)</th><th>what</th></tr>
{{range .Moments}}<tr><td class="when">{{.Time.Format "15:04:05.000"}}</td><td>{{.What}}</td></tr>
{{end}}</table>{{else}}<p>Nothing notable.</p>{{end}}
{{range .Charts}}<h2>{{.Title}}</h2>
<p class="about">{{.About}}</p>
<figure>{{.SVG}}</figure>
{{end}}
{{range .Sections}}<h2 id="{{.ID}}">{{.Title}}</h2>
{{if .About}}<p class="about">{{.About}}</p>{{end}}
{{if .Rows}}<table><tr>{{range .Cols}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}
<p class="query">Query: <code>{{.Query}}</code></p>
{{end}}
<h2 id="drill-down">Drill down</h2>
<ul>{{range .DrillDown}}<li><code>{{.}}</code></li>{{end}}</ul>
</body>
</html>
`))

// WriteHTML writes the report as one self-contained HTML page with inline
// SVG charts (no script, no external resource: readable offline); top
// bounds the lists.
func (inc Incident) WriteHTML(w io.Writer, top int) error {
	cs, err := inc.charts()
	if err != nil {
		return err
	}
	return page.Execute(w, map[string]any{
		"Title": inc.title(), "Headline": inc.Headline(), "Moments": inc.Moments, "Charts": cs,
		"Sections": inc.sections(top), "DrillDown": inc.drillDown(),
	})
}
