// Package dashboards builds vigil's Grafana dashboards as code with the
// Grafana Foundation SDK: vigil-slo, vigil-security, vigil-pipeline and
// vigil-session, over two datasources chosen by variables (Prometheus for
// vigil's metrics and recorded SLO rules, ClickHouse through the
// grafana-clickhouse-datasource plugin for the stored events, anomalies and
// actions). dashboards/json holds the generated JSON, which
// `vigil dashboards generate` writes and `vigil dashboards push` provisions.
package dashboards

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Tag is on every vigil dashboard; the dashboards dropdown link lists the
// dashboards carrying it.
const Tag = "vigil"

// Datasource plugin types and the names of the variables that choose them.
const (
	PrometheusType = "prometheus"
	ClickHouseType = "grafana-clickhouse-datasource"
	PrometheusVar  = "prometheus"
	ClickHouseVar  = "clickhouse"
)

// The datasources `vigil dashboards push` and deploy/grafana provision;
// the datasource variables select them by default.
const (
	PrometheusUID  = "vigil-prometheus"
	PrometheusName = "vigil Prometheus"
	ClickHouseUID  = "vigil-clickhouse"
	ClickHouseName = "vigil ClickHouse"
)

// Generated is one built dashboard.
type Generated struct {
	// UID is the dashboard's stable uid, e.g. vigil-slo.
	UID string
	// Title is its title.
	Title string
	// Model is the built dashboard.
	Model dashboard.Dashboard
}

// JSON returns the dashboard model as indented JSON, ending in a newline.
func (g Generated) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(g.Model, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("dashboards: encode %s: %w", g.UID, err)
	}
	return append(b, '\n'), nil
}

// All builds every vigil dashboard, in a fixed order.
func All() ([]Generated, error) {
	builders := []func() *dashboard.DashboardBuilder{sloDashboard, securityDashboard, pipelineDashboard, sessionDashboard}
	out := make([]Generated, 0, len(builders))
	for _, b := range builders {
		d, err := b().Build()
		if err != nil {
			return nil, fmt.Errorf("dashboards: build: %w", err)
		}
		numberPanels(&d)
		out = append(out, Generated{UID: *d.Uid, Title: *d.Title, Model: d})
	}
	return out, nil
}

// numberPanels gives every panel (rows and panels inside rows too) a
// dashboard-unique id, in layout order.
func numberPanels(d *dashboard.Dashboard) {
	id := uint32(0)
	for i := range d.Panels {
		p := &d.Panels[i]
		id++
		switch {
		case p.Panel != nil:
			p.Panel.Id = cog.ToPtr(id)
		case p.RowPanel != nil:
			p.RowPanel.Id = id
			for j := range p.RowPanel.Panels {
				id++
				p.RowPanel.Panels[j].Id = cog.ToPtr(id)
			}
		}
	}
}

// newDashboard starts a dashboard with the shared settings: uid, tags, the
// datasource variables, the dashboards dropdown keeping time and variables.
func newDashboard(uid, title, description string, from string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{Tag}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Time(from, "now").
		Timezone("utc").
		Refresh("30s").
		Link(dashboard.NewDashboardLinkBuilder("vigil dashboards").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{Tag}).
			AsDropdown(true).
			KeepTime(true).
			IncludeVars(true)).
		WithVariable(dashboard.NewDatasourceVariableBuilder(PrometheusVar).
			Label("Prometheus").
			Type(PrometheusType).
			Current(option(PrometheusName, PrometheusUID)).
			Description("The Prometheus that scrapes vigil and evaluates its rules.")).
		WithVariable(dashboard.NewDatasourceVariableBuilder(ClickHouseVar).
			Label("ClickHouse").
			Type(ClickHouseType).
			Current(option(ClickHouseName, ClickHouseUID)).
			Description("The ClickHouse vigil stores events, anomalies and actions in (its default database is vigil's)."))
}

// tenantVariable chooses one tenant (or all) for the ClickHouse panels;
// tenantFilter is the matching SQL condition.
func tenantVariable() cog.Builder[dashboard.VariableModel] {
	return dashboard.NewQueryVariableBuilder("tenant").
		Label("Tenant").
		Description("Limits the ClickHouse panels to one tenant.").
		Datasource(dsRef(ClickHouseType, ClickHouseVar)).
		Query(dashboard.StringOrMap{String: cog.ToPtr("SELECT DISTINCT tenant FROM events WHERE $__timeFilter(time) ORDER BY tenant")}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		IncludeAll(true).
		AllValue(allTenants)
}

const allTenants = "__all"

// tenantFilter matches the rows of the chosen tenant.
var tenantFilter = "(" + sqlVar("tenant") + " = '" + allTenants + "' OR tenant = " + sqlVar("tenant") + ")"

// sqlVar is a dashboard variable as a ClickHouse string literal that no
// value can break out of: Grafana's percentencode format leaves only
// [A-Za-z0-9-_.~] and %XX (encodeURIComponentStrict), and ClickHouse
// decodes it. A viewer typing a quote or a backslash into a text box
// searches for it; the query keeps its shape.
func sqlVar(name string) string { return "decodeURLComponent('${" + name + ":percentencode}')" }

// option is a variable's selected value.
func option(text, value string) dashboard.VariableOption {
	return dashboard.VariableOption{
		Text:  dashboard.StringOrArrayOfString{String: cog.ToPtr(text)},
		Value: dashboard.StringOrArrayOfString{String: cog.ToPtr(value)},
	}
}

func dsRef(typ, variable string) common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr(typ), Uid: cog.ToPtr("${" + variable + "}")}
}

// prom is a PromQL target.
func prom(expr, legend string) cog.Builder[variants.Dataquery] {
	return prometheus.NewDataqueryBuilder().
		Datasource(dsRef(PrometheusType, PrometheusVar)).
		Expr(expr).
		LegendFormat(legend).
		Range()
}

// promInstant is a PromQL target evaluated once, at the range's end.
func promInstant(expr, legend string) cog.Builder[variants.Dataquery] {
	return prometheus.NewDataqueryBuilder().
		Datasource(dsRef(PrometheusType, PrometheusVar)).
		Expr(expr).
		LegendFormat(legend).
		Instant().
		Format(prometheus.PromQueryFormatTable)
}

// spec is what every panel has: a title, a description and a unit.
type spec struct {
	title, description, unit string
	w, h                     uint32
}

// refIDs names a panel's targets A, B, C… as Grafana does.
func refIDs(ts []cog.Builder[variants.Dataquery]) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(ts))
	for i, t := range ts {
		out[i] = refID{t, string(rune('A' + i))}
	}
	return out
}

// refID sets the refId of the target it wraps.
type refID struct {
	b  cog.Builder[variants.Dataquery]
	id string
}

func (r refID) Build() (variants.Dataquery, error) {
	q, err := r.b.Build()
	if err != nil {
		return nil, err
	}
	switch v := q.(type) {
	case prometheus.Dataquery: // built as a value
		v.RefId = cog.ToPtr(r.id)
		return v, nil
	case *ClickHouseQuery:
		v.RefID = r.id
	}
	return q, nil
}

// dsOf returns the datasource of a panel's targets (all of one kind).
func dsOf(ts []cog.Builder[variants.Dataquery]) common.DataSourceRef {
	if len(ts) > 0 {
		if _, ok := ts[0].(*clickHouseBuilder); ok {
			return dsRef(ClickHouseType, ClickHouseVar)
		}
	}
	return dsRef(PrometheusType, PrometheusVar)
}

func timeSeries(s spec, targets ...cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(s.title).
		Description(s.description).
		Unit(s.unit).
		Span(orDefault(s.w, 12)).
		Height(orDefault(s.h, 8)).
		Datasource(dsOf(targets)).
		Targets(refIDs(targets)).
		FillOpacity(10).
		LineWidth(1)
}

// step is one threshold: from value on (nil: the base), the color.
type step struct {
	from  *float64
	color string
}

func at(v float64, color string) step { return step{&v, color} }
func base(color string) step          { return step{nil, color} }

func thresholds(steps ...step) *dashboard.ThresholdsConfigBuilder {
	ts := make([]dashboard.Threshold, len(steps))
	for i, s := range steps {
		ts[i] = dashboard.Threshold{Value: s.from, Color: s.color}
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

func statPanel(s spec, th *dashboard.ThresholdsConfigBuilder, targets ...cog.Builder[variants.Dataquery]) *stat.PanelBuilder {
	b := stat.NewPanelBuilder().
		Title(s.title).
		Description(s.description).
		Unit(s.unit).
		Span(orDefault(s.w, 6)).
		Height(orDefault(s.h, 4)).
		Datasource(dsOf(targets)).
		Targets(refIDs(targets)).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeArea).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	if th != nil {
		b = b.Thresholds(th)
	}
	return b
}

func tablePanel(s spec, targets ...cog.Builder[variants.Dataquery]) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title(s.title).
		Description(s.description).
		Unit(s.unit).
		Span(orDefault(s.w, 24)).
		Height(orDefault(s.h, 10)).
		Datasource(dsOf(targets)).
		Targets(refIDs(targets))
}

// row starts a collapsible-less section.
func row(title string) *dashboard.RowBuilder {
	return dashboard.NewRowBuilder(title)
}

func orDefault(v, d uint32) uint32 {
	if v == 0 {
		return d
	}
	return v
}

// Panels returns every panel of d, rows' panels included, in layout order.
func Panels(d dashboard.Dashboard) []dashboard.Panel {
	var out []dashboard.Panel
	for _, p := range d.Panels {
		switch {
		case p.Panel != nil:
			out = append(out, *p.Panel)
		case p.RowPanel != nil:
			out = append(out, p.RowPanel.Panels...)
		}
	}
	return out
}

// Query is one panel target, for checking outside Grafana.
type Query struct {
	// Dashboard and Panel locate it.
	Dashboard, Panel string
	// PromQL is set for Prometheus targets, SQL for ClickHouse ones.
	PromQL, SQL string
	// Datasource is the target's own datasource (nil for variables).
	Datasource *common.DataSourceRef
}

// Queries returns every target of every panel of g and its ClickHouse
// query variables.
func Queries(g Generated) []Query {
	var out []Query
	for _, p := range Panels(g.Model) {
		title := ""
		if p.Title != nil {
			title = *p.Title
		}
		for _, t := range p.Targets {
			switch v := t.(type) {
			case prometheus.Dataquery:
				out = append(out, Query{Dashboard: g.UID, Panel: title, PromQL: v.Expr, Datasource: v.Datasource})
			case *ClickHouseQuery:
				out = append(out, Query{Dashboard: g.UID, Panel: title, SQL: v.RawSQL, Datasource: v.Datasource})
			}
		}
	}
	for _, v := range g.Model.Templating.List {
		if v.Type != "query" || v.Query == nil || v.Query.String == nil || v.Datasource == nil || v.Datasource.Type == nil {
			continue
		}
		q := Query{Dashboard: g.UID, Panel: "variable " + v.Name}
		if *v.Datasource.Type == ClickHouseType {
			q.SQL = *v.Query.String
		} else {
			continue // label_values(...) is Grafana's, not PromQL
		}
		out = append(out, q)
	}
	return slices.Clip(out)
}

// cogLink is a link builder, as panels take them.
type cogLink = cog.Builder[dashboard.DashboardLink]

// reduceSum makes a stat panel show the sum over the range.
func reduceSum() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"sum"})
}
