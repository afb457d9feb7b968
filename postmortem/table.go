// Package postmortem answers what happened during an incident, from
// ClickHouse: the named queries of schemas/queries run with bound
// parameters, a subject's timeline (events, anomalies and actions merged
// in time order, gaps and token-reuse classifications marked), and the
// incident report (Markdown, or HTML with inline SVG charts).
//
// Every function takes a connection whose default database is vigil's
// (the named queries use unqualified table names); none keeps state, and
// all are safe for concurrent use.
package postmortem

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/schemas/queries"
)

// Table is the result of a named query: its columns and rows, each value
// as the driver scanned it (string, numbers, time.Time).
type Table struct {
	// Query is the named query that produced it.
	Query string `json:"query"`
	// Columns are the result's column names.
	Columns []string `json:"columns"`
	// Rows are the result's rows, one value per column.
	Rows [][]any `json:"rows"`
}

// Run runs the named query with its parameters given as text (see
// queries.Query.Bind) and returns every row.
func Run(ctx context.Context, conn driver.Conn, name string, params map[string]string) (Table, error) {
	q, err := queries.Get(name)
	if err != nil {
		return Table{}, err
	}
	sql, args, err := q.Bind(params)
	if err != nil {
		return Table{}, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return Table{}, fmt.Errorf("postmortem: query %s: %w", name, err)
	}
	defer rows.Close()
	t := Table{Query: name, Columns: rows.Columns(), Rows: [][]any{}}
	types := rows.ColumnTypes()
	for rows.Next() {
		dest := make([]any, len(types))
		for i, c := range types {
			dest[i] = reflect.New(c.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return Table{}, fmt.Errorf("postmortem: query %s: %w", name, err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			v := reflect.ValueOf(d).Elem()
			if v.Kind() == reflect.Pointer {
				if v.IsNil() {
					row[i] = nil
					continue
				}
				v = v.Elem()
			}
			row[i] = v.Interface()
			if tm, ok := row[i].(time.Time); ok {
				row[i] = tm.UTC()
			}
		}
		t.Rows = append(t.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return Table{}, fmt.Errorf("postmortem: query %s: %w", name, err)
	}
	return t, nil
}

// Col returns the index of the named column, or -1.
func (t Table) Col(name string) int {
	for i, c := range t.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// Text formats one value for people and CSV: times in UTC as
// 2006-01-02 15:04:05, numbers in their shortest form.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		if x.IsZero() || x.Unix() == 0 {
			return ""
		}
		return x.UTC().Format(time.DateTime)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	default:
		return fmt.Sprint(x)
	}
}

// Formats are the output formats of tables and timelines.
var Formats = []string{"table", "json", "csv", "md"}

// Write writes t in format: an aligned table, JSON (an array of objects),
// CSV with a header, or a Markdown table.
func (t Table) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		objs := make([]map[string]any, len(t.Rows))
		for i, r := range t.Rows {
			objs[i] = make(map[string]any, len(r))
			for j, v := range r {
				if tm, ok := v.(time.Time); ok {
					v = tm.UTC().Format(time.RFC3339)
				}
				objs[i][t.Columns[j]] = v
			}
		}
		return writeJSON(w, objs)
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(t.Columns); err != nil {
			return err
		}
		for _, r := range t.Rows {
			if err := cw.Write(csvSafe(texts(r))); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case "md":
		return writeMarkdownTable(w, t.Columns, textRows(t.Rows))
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(t.Columns, "\t")))
		for _, r := range t.Rows {
			fmt.Fprintln(tw, strings.Join(oneLine(texts(r)), "\t"))
		}
		return tw.Flush()
	}
	return fmt.Errorf("postmortem: unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

func texts(r []any) []string {
	out := make([]string, len(r))
	for i, v := range r {
		out[i] = Text(v)
	}
	return out
}

func textRows(rs [][]any) [][]string {
	out := make([][]string, len(rs))
	for i, r := range rs {
		out[i] = texts(r)
	}
	return out
}

// oneLine keeps a table row on one line and free of terminal escapes:
// tabs, newlines and other control characters become spaces.
func oneLine(ss []string) []string {
	for i, s := range ss {
		ss[i] = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				return ' '
			}
			return r
		}, s)
	}
	return ss
}

// csvSafe keeps spreadsheet programs from reading a cell as a formula: a
// cell starting with = + - @ (or a tab or carriage return) gets a leading
// apostrophe. Event fields come from clients and may be hostile.
func csvSafe(ss []string) []string {
	for i, s := range ss {
		if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			ss[i] = "'" + s
		}
	}
	return ss
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// mdEscaper keeps cell text from becoming HTML, code or links in a
// Markdown renderer.
var mdEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "\\`", "[", "\\[", "]", "\\]")

// writeMarkdownTable writes a GitHub-flavoured Markdown table, escaping
// pipes and keeping each cell on one line.
func writeMarkdownTable(w io.Writer, cols []string, rows [][]string) error {
	esc := func(s string) string {
		s = strings.ReplaceAll(s, `\`, `\\`)
		s = strings.ReplaceAll(s, "|", `\|`)
		s = mdEscaper.Replace(s)
		return strings.Join(oneLine([]string{s}), "")
	}
	var b strings.Builder
	b.WriteString("|")
	for _, c := range cols {
		b.WriteString(" " + esc(c) + " |")
	}
	b.WriteString("\n|")
	for range cols {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("|")
		for _, c := range r {
			b.WriteString(" " + esc(c) + " |")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
