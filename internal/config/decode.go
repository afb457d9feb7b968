package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// source records where the value of each dotted key came from.
type source struct {
	file  string         // config file name as given to Parse; "" when there is none
	where map[string]loc // dotted key (kafka.brokers, kafka.brokers[1]) → where it was set
}

// loc is a line of the config file or, when env is set, an environment variable.
type loc struct {
	line int
	env  string
}

// format formats l as file:line, "line N" or the variable's name.
func (s *source) format(l loc) string {
	switch {
	case l.env != "":
		return l.env
	case s.file == "":
		return fmt.Sprintf("line %d", l.line)
	}
	return fmt.Sprintf("%s:%d", s.file, l.line)
}

// locate returns where key was set, falling back from a list element
// (kafka.brokers[1]) to its list (kafka.brokers), which is how an element
// set through the environment is found.
func (s *source) locate(key string) (loc, bool) {
	if s == nil {
		return loc{}, false
	}
	if w, ok := s.where[key]; ok {
		return w, true
	}
	if i := strings.LastIndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
		if w, ok := s.where[key[:i]]; ok {
			return w, true
		}
	}
	return loc{}, false
}

// set records that key was set at w, forgetting the positions of the
// elements of a list it replaces.
func (s *source) set(key string, w loc) {
	for k := range s.where {
		if strings.HasPrefix(k, key+"[") {
			delete(s.where, k)
		}
	}
	s.where[key] = w
}

// decoder walks a YAML node tree against the Config struct by reflection on
// the yaml tags, collecting every error rather than stopping at the first.
type decoder struct {
	src      *source
	fileErrs []lineError
	envErrs  []string
}

type lineError struct {
	line int
	msg  string
}

var durationType = reflect.TypeOf(time.Duration(0))

func (d *decoder) pos(line int) string { return d.src.format(loc{line: line}) }

func (d *decoder) errorf(line int, format string, args ...any) {
	d.fileErrs = append(d.fileErrs, lineError{line, d.pos(line) + ": " + fmt.Sprintf(format, args...)})
}

// err joins the file errors in line order, then the environment errors.
func (d *decoder) err() error {
	sort.SliceStable(d.fileErrs, func(i, j int) bool { return d.fileErrs[i].line < d.fileErrs[j].line })
	var errs []error
	for _, e := range d.fileErrs {
		errs = append(errs, errors.New(e.msg))
	}
	for _, e := range d.envErrs {
		errs = append(errs, errors.New(e))
	}
	return errors.Join(errs...)
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax reports a YAML syntax error as file:line when the parser gave a line.
func (d *decoder) syntax(err error) {
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.errorf(line, "invalid YAML: %s", m[2])
		return
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if d.src.file != "" {
		msg = d.src.file + ": invalid YAML: " + msg
	} else {
		msg = "invalid YAML: " + msg
	}
	d.fileErrs = append(d.fileErrs, lineError{0, msg})
}

// document decodes the single YAML document in data into c.
func (d *decoder) document(data []byte, c *Config) {
	if len(bytes.TrimSpace(data)) == 0 {
		return
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntax(err)
		}
		return
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		if root := docRoot(&extra); root != nil && !isNull(root) {
			d.errorf(root.Line, "a second YAML document starts here; the config file must hold exactly one")
			return
		}
	case !errors.Is(err, io.EOF):
		d.syntax(err)
		return
	}
	root := docRoot(&doc)
	if root == nil || isNull(root) {
		return // only comments, or an explicit null: the defaults
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root.Line, "the top level must be a mapping of sections (%s), got %s",
			strings.Join(fieldNames(reflect.TypeOf(Config{})), ", "), describe(root))
		return
	}
	d.mapping(root, reflect.ValueOf(c).Elem(), "")
}

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	return deref(doc.Content[0])
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "no value"
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported YAML node"
}

// mapping decodes mapping node n into struct v whose dotted key is prefix.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, prefix string) {
	fields := structFields(v.Type())
	// Merge keys (<<: *anchor) first, so that explicit keys override them.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.merge(n.Content[i+1], v, prefix)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, "%s: keys must be plain names, got %s", orTop(prefix), describe(k))
			continue
		}
		name := k.Value
		full := join(prefix, name)
		f, ok := fieldByName(fields, name)
		if !ok {
			d.unknown(k.Line, prefix, name, fields)
			continue
		}
		if first, dup := seen[name]; dup {
			d.errorf(k.Line, "%s: duplicate key (first set at line %d)", full, first)
			continue
		}
		seen[name] = k.Line
		d.src.set(full, loc{line: k.Line})
		d.value(val, v.FieldByIndex(f.index), full)
	}
}

// merge applies the value of a YAML merge key: a mapping or a list of
// mappings, earlier ones taking precedence.
func (d *decoder) merge(val *yaml.Node, v reflect.Value, prefix string) {
	val = deref(val)
	switch val.Kind {
	case yaml.MappingNode:
		d.mapping(val, v, prefix)
		return
	case yaml.SequenceNode:
		for i := len(val.Content) - 1; i >= 0; i-- {
			m := deref(val.Content[i])
			if m.Kind != yaml.MappingNode {
				d.errorf(m.Line, "%s: a merge key (<<) takes a mapping or a list of mappings, got %s", orTop(prefix), describe(m))
				continue
			}
			d.mapping(m, v, prefix)
		}
		return
	}
	d.errorf(val.Line, "%s: a merge key (<<) takes a mapping or a list of mappings, got %s", orTop(prefix), describe(val))
}

// value decodes node n into v, whose dotted key is key.
func (d *decoder) value(n *yaml.Node, v reflect.Value, key string) {
	n = deref(n)
	switch {
	case v.Kind() == reflect.Struct:
		if isNull(n) {
			return // an empty section keeps its defaults
		}
		if n.Kind != yaml.MappingNode {
			hint := ""
			if _, ok := fieldByName(structFields(v.Type()), "enabled"); ok && n.Kind == yaml.ScalarNode {
				hint = fmt.Sprintf(" (did you mean %q?)", key+".enabled: "+n.Value)
			}
			d.errorf(n.Line, "%s: expected a mapping, got %s%s", key, describe(n), hint)
			return
		}
		d.mapping(n, v, key)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n.Line, "%s: expected a list, got %s", key, describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
		ok := true
		for i, e := range n.Content {
			e = deref(e)
			ek := fmt.Sprintf("%s[%d]", key, i)
			d.src.where[ek] = loc{line: e.Line}
			ev := reflect.New(v.Type().Elem()).Elem()
			if !d.scalar(e, ev, ek) {
				ok = false
			}
			s = reflect.Append(s, ev)
		}
		if ok {
			v.Set(s)
		}
	default:
		d.scalar(n, v, key)
	}
}

// scalar decodes scalar node n into the leaf v, reporting false on error.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, key string) bool {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, "%s: expected %s, got %s", key, typeName(v.Type()), describe(n))
		return false
	}
	if isNull(n) {
		hint := ""
		if v.Kind() == reflect.String {
			hint = `, or write "" for an empty value`
		}
		d.errorf(n.Line, "%s: no value (delete the key to use the default%s)", key, hint)
		return false
	}
	if err := setScalar(v, n.Value); err != nil {
		d.errorf(n.Line, "%s: %v", key, err)
		return false
	}
	// A relative path in the file is relative to the file's directory.
	if v.Kind() == reflect.String && strings.HasSuffix(key, "_file") && d.src.file != "" {
		if p := v.String(); p != "" && !filepath.IsAbs(p) {
			v.SetString(filepath.Join(filepath.Dir(d.src.file), p))
		}
	}
	return true
}

// unknown reports an unknown key, suggesting the nearest known one.
func (d *decoder) unknown(line int, prefix, name string, fields []field) {
	full := join(prefix, name)
	if s := suggest(prefix, name, fields); s != "" {
		d.errorf(line, "unknown key %q (did you mean %q?)", full, s)
		return
	}
	var names []string
	for _, f := range fields {
		names = append(names, f.name)
	}
	d.errorf(line, "unknown key %q (%s takes: %s)", full, orTop(prefix), strings.Join(names, ", "))
}

// env applies the VIGIL_* overrides.
func (d *decoder) env(c *Config, getenv func(string) (string, bool)) {
	forEachLeaf(reflect.ValueOf(c).Elem(), "", func(key string, v reflect.Value) {
		name := envName(key)
		s, ok := getenv(name)
		if !ok {
			return
		}
		if err := setEnv(v, s); err != nil {
			d.envErrs = append(d.envErrs, fmt.Sprintf("%s (%s): %v", name, key, err))
			return
		}
		d.src.set(key, loc{env: name})
	})
}

// setEnv sets the leaf v from an environment variable's value; lists are
// comma-separated, with spaces around elements ignored.
func setEnv(v reflect.Value, s string) error {
	if v.Kind() != reflect.Slice {
		return setScalar(v, s)
	}
	parts := []string{}
	if strings.TrimSpace(s) != "" {
		parts = strings.Split(s, ",")
	}
	out := reflect.MakeSlice(v.Type(), 0, len(parts))
	for i, p := range parts {
		ev := reflect.New(v.Type().Elem()).Elem()
		if err := setScalar(ev, strings.TrimSpace(p)); err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
		out = reflect.Append(out, ev)
	}
	v.Set(out)
	return nil
}

// setScalar parses s into the leaf v; the same rules serve the file and the
// environment.
func setScalar(v reflect.Value, s string) error {
	if v.Type() == durationType {
		dur, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(dur))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("cannot parse %q as a boolean (true or false)", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(s), "_", ""), 10, v.Type().Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return fmt.Errorf("cannot parse %q as an integer: out of range", s)
			}
			return fmt.Errorf("cannot parse %q as an integer", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.ReplaceAll(strings.TrimSpace(s), "_", ""), 10, v.Type().Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return fmt.Errorf("cannot parse %q as a non-negative integer: out of range", s)
			}
			return fmt.Errorf("cannot parse %q as a non-negative integer", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil {
			return fmt.Errorf("cannot parse %q as a number", s)
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("config: unsupported field type %s", v.Type()))
	}
	return nil
}

// parseDuration parses a Go duration ("500ms", "30s", "1m30s") and rejects a
// bare number other than 0, which would otherwise silently mean nanoseconds.
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return 0, fmt.Errorf("cannot parse %q as a duration: add a unit, e.g. \"%ss\" or \"%sms\"", s, t, t)
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q as a duration (a number with a unit: ms, s, m, h, e.g. \"500ms\", \"30s\", \"1m30s\")", s)
	}
	return d, nil
}

// typeName names a leaf type for "expected X" messages.
func typeName(t reflect.Type) string {
	if t == durationType {
		return "a duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// field is one yaml-tagged field of a config struct.
type field struct {
	name  string
	index []int
	typ   reflect.Type
}

// structFields lists the yaml-tagged exported fields of t in order.
func structFields(t reflect.Type) []field {
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		fs = append(fs, field{name: name, index: sf.Index, typ: sf.Type})
	}
	return fs
}

func fieldByName(fs []field, name string) (field, bool) {
	for _, f := range fs {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for _, f := range structFields(t) {
		names = append(names, f.name)
	}
	return names
}

// isSection reports whether a field type is a nested section rather than a leaf.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != durationType
}

// forEachLeaf calls fn for every leaf (scalar or list) under the struct v.
func forEachLeaf(v reflect.Value, prefix string, fn func(key string, v reflect.Value)) {
	for _, f := range structFields(v.Type()) {
		key := join(prefix, f.name)
		fv := v.FieldByIndex(f.index)
		if isSection(f.typ) {
			forEachLeaf(fv, key, fn)
			continue
		}
		fn(key, fv)
	}
}

// allKeys lists every dotted key of Config, sections included.
func allKeys() []string {
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for _, f := range structFields(t) {
			key := join(prefix, f.name)
			keys = append(keys, key)
			if isSection(f.typ) {
				walk(f.typ, key)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return keys
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func orTop(prefix string) string {
	if prefix == "" {
		return "the top level"
	}
	return prefix
}

// envName is the environment variable overriding a dotted key.
func envName(key string) string {
	return "VIGIL_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// suggest returns the known dotted key nearest to the unknown prefix.name:
// a sibling within a small edit distance, else a key elsewhere whose last
// part is within that distance (a key put in the wrong section).
func suggest(prefix, name string, siblings []field) string {
	lname := strings.ToLower(name)
	limit := len(lname) / 3
	if limit < 1 {
		limit = 1
	}
	if limit > 2 {
		limit = 2
	}
	best, bestD := "", limit+1
	for _, f := range siblings {
		if dist := editDistance(lname, f.name); dist < bestD {
			best, bestD = join(prefix, f.name), dist
		}
	}
	if best != "" {
		return best
	}
	bestShared := -1
	for _, k := range allKeys() {
		last := k[strings.LastIndexByte(k, '.')+1:]
		dist := editDistance(lname, last)
		if dist > limit {
			continue
		}
		shared := sharedPrefix(prefix, k)
		if dist < bestD || (dist == bestD && shared > bestShared) {
			best, bestD, bestShared = k, dist, shared
		}
	}
	return best
}

// sharedPrefix counts the leading dotted parts a and b have in common.
func sharedPrefix(a, b string) int {
	if a == "" {
		return 0
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	n := 0
	for n < len(as) && n < len(bs) && as[n] == bs[n] {
		n++
	}
	return n
}

// editDistance is the optimal-string-alignment distance (Levenshtein plus
// adjacent transpositions) between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
