package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/common/model"

	"github.com/vigilhq/vigil/slo"
)

// sloDashboard: is anything burning? Each SLO's SLI, burn rate per window
// and remaining budget, from the rules `vigil rules generate` writes.
func sloDashboard() *dashboard.DashboardBuilder {
	const sel = `{sloth_slo=~"$slo"}`
	burn := make([]cog.Builder[variants.Dataquery], 0, len(slo.RatioWindows))
	for _, w := range slo.RatioWindows {
		name := model.Duration(w).String()
		burn = append(burn, prom(fmt.Sprintf(
			"slo:sli_error:ratio_rate%s%s / on (sloth_id, sloth_slo, sloth_service) group_left slo:error_budget:ratio%s", name, sel, sel),
			"{{sloth_slo}} "+name))
	}
	return newDashboard("vigil-slo", "vigil / SLOs",
		"Session SLOs: SLI, error-budget burn rate per window and budget remaining, from vigil's recorded rules; exact figures for any past window come from `vigil slo report`.", "now-24h").
		WithVariable(dashboard.NewQueryVariableBuilder("slo").
			Label("SLO").
			Description("The SLOs shown (from the recorded rules).").
			Datasource(dsRef(PrometheusType, PrometheusVar)).
			Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(slo:objective:ratio, sloth_slo)")}).
			Refresh(dashboard.VariableRefreshOnDashboardLoad).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).
			IncludeAll(true)).
		WithVariable(tenantVariable()).
		WithRow(row("Now")).
		WithPanel(statPanel(spec{title: "SLI over the SLO period", unit: "percentunit",
			description: "Share of good events over each SLO's own period (its window: 28d, 30d, …), as 1 - period burn rate × error budget. Not coloured, because SLOs have different objectives; the error budget panel next to it says whether the objective holds."},
			thresholds(base("blue")),
			prom(`1 - (slo:period_burn_rate:ratio`+sel+` * on (sloth_id, sloth_slo, sloth_service) group_left slo:error_budget:ratio`+sel+`)`, "{{sloth_slo}}")).Decimals(3)).
		WithPanel(statPanel(spec{title: "Error budget remaining", unit: "percentunit",
			description: "Share of the period's error budget left per SLO (1 - period burn rate). Red below 25%."},
			thresholds(base("red"), at(0.25, "yellow"), at(0.5, "green")),
			prom("slo:period_error_budget_remaining:ratio"+sel, "{{sloth_slo}}")).Decimals(1)).
		WithPanel(statPanel(spec{title: "Burn rate (5m)", unit: "suffix:×",
			description: "How many times faster than sustainable each SLO spends its budget now; 1× spends it exactly over the period. The page alert fires at 14.4× (1h and 5m)."},
			thresholds(base("green"), at(1, "yellow"), at(6, "orange"), at(14.4, "red")),
			prom("slo:current_burn_rate:ratio"+sel, "{{sloth_slo}}")).Decimals(2)).
		WithPanel(statPanel(spec{title: "Objective", unit: "percentunit",
			description: "Each SLO's objective over its period, as declared in the config."},
			thresholds(base("blue")),
			prom("slo:objective:ratio"+sel, "{{sloth_slo}}")).Decimals(3)).
		WithRow(row("Over time")).
		WithPanel(timeSeries(spec{title: "SLI (5m)", unit: "percentunit",
			description: "Share of good events over the last 5 minutes, with the objective as a dashed reference."},
			prom("1 - slo:sli_error:ratio_rate5m"+sel, "{{sloth_slo}}"),
			prom("slo:objective:ratio"+sel, "{{sloth_slo}} objective"))).
		WithPanel(timeSeries(spec{title: "Burn rate per window", unit: "suffix:×",
			description: "Error ratio over each window divided by the error budget: the multiwindow burn rates the page (14.4×: 1h and 5m, 6×: 6h and 30m) and ticket alerts compare."},
			burn...)).
		WithPanel(timeSeries(spec{title: "Error budget remaining", unit: "percentunit",
			description: "Budget left over the SLO period as it evolves; a steady slope to 0 before the period ends means the SLO will be missed."},
			prom("slo:period_error_budget_remaining:ratio"+sel, "{{sloth_slo}}"))).
		WithPanel(timeSeries(spec{title: "Good and bad events", unit: "cps",
			description: "Events counted by each SLO, per second, by result (weighted by sample_rate)."},
			prom(`sum by (slo, result) (rate(vigil_slo_events_total{slo=~"$slo"}[$__rate_interval]))`, "{{slo}} {{result}}"))).
		WithRow(row("From ClickHouse")).
		WithPanel(timeSeries(spec{title: "Failures by reason", unit: "short", w: 24,
			description: "Failed validations, refreshes and logins per interval, by event type and reason, counted exactly from the stored events."},
			chSeries(`
SELECT `+bucket("time")+`, concat(toString(type), ' ', reason) AS series, uniqExact(id) AS failures
FROM events
WHERE $__timeFilter(time) AND `+tenantFilter+` AND outcome = 'failure'
GROUP BY t, series
ORDER BY t`)))
}
