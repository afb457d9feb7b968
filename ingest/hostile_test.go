package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
)

// hostileMeta is SQL, template, shell, HTML, log-injection and format
// metacharacters that every free-text field of a stored event carries.
const hostileMeta = `x'); DROP TABLE events; -- " OR 1=1 /* {{.}} ${jndi:ldap://e.invalid/a} $(id) ` + "`id`" + ` <script>alert(1)</script> %s%n \\ \n\t =HYPERLINK("e.invalid") ` + "\u202e\u0000"

// hostileKey is an attribute key with metacharacters, within the 128-byte limit of keys.
const hostileKey = `k'); DROP TABLE events; -- {{.}} ${jndi:x} <b>` + "\u202e"

// hostileCase is one message of the catalogue and where it must end.
type hostileCase struct {
	name  string
	value []byte
	want  schemas.Reason // "" means stored in events, intact
	id    string         // the event id, for stored cases
}

func hostileCatalogue() []hostileCase {
	base := func(id string) string {
		return `"id":"` + id + `","type":"session.validated","time":"` + time.Now().UTC().Format(time.RFC3339Nano) +
			`","user_id":"u-h","session_id":"s-h","outcome":"success"`
	}
	obj := func(id, extra string) []byte { return []byte("{" + base(id) + extra + "}") }
	meta, _ := jsonString(hostileMeta)
	var cs []hostileCase
	add := func(name string, v []byte, want schemas.Reason) {
		cs = append(cs, hostileCase{name: name, value: v, want: want})
	}
	add("deeply nested arrays", []byte(strings.Repeat("[", 20_000)+strings.Repeat("]", 20_000)), schemas.ReasonMalformedJSON)
	add("deeply nested attribute value", obj("h-nested", `,"attributes":{"a":`+strings.Repeat(`{"a":`, 5_000)+`1`+strings.Repeat("}", 5_000)+`}`), schemas.ReasonWrongType)
	add("10 MB message", obj("h-10mb", `,"user_agent":"`+strings.Repeat("A", 10<<20)+`"`), schemas.ReasonTooLarge)
	add("invalid UTF-8", obj("h-utf8", `,"user_agent":"`+"\xc3\x28\xa0\xa1"+`"`), schemas.ReasonBadEncoding)
	add("raw NUL byte", obj("h-nul", `,"user_agent":"a`+"\x00"+`b"`), schemas.ReasonMalformedJSON)
	add("NUL byte outside a string", []byte("{"+base("h-nul2")+"}\x00"), schemas.ReasonMalformedJSON)
	add("huge integer", obj("h-asn", `,"asn":1`+strings.Repeat("0", 400)), schemas.ReasonBadValue)
	add("huge float", obj("h-lat", `,"latency_ms":1e999`), schemas.ReasonBadValue)
	add("negative zero and exponent sample rate", obj("h-rate", `,"sample_rate":-0e-999`), schemas.ReasonBadValue)
	add("duplicate keys", obj("h-dup", `,"outcome":"failure"`), schemas.ReasonDuplicateField)
	add("duplicate keys with different escapes", obj("h-dup2", `,"user\u005fid":"u-other"`), schemas.ReasonDuplicateField)
	add("far past", []byte(`{"id":"h-past","type":"session.validated","time":"0001-01-01T00:00:00Z","user_id":"u","session_id":"s","outcome":"success"}`), schemas.ReasonBadTime)
	add("before the epoch", []byte(`{"id":"h-1969","type":"session.validated","time":"1969-12-31T23:59:59Z","user_id":"u","session_id":"s","outcome":"success"}`), schemas.ReasonBadTime)
	add("far future", []byte(`{"id":"h-future","type":"session.validated","time":"9999-12-31T23:59:59.999999999Z","user_id":"u","session_id":"s","outcome":"success"}`), schemas.ReasonTimeInFuture)
	add("not an object", []byte(`["id","h"]`), schemas.ReasonMalformedJSON)
	add("empty", nil, schemas.ReasonMalformedJSON)
	add("JSON null", []byte(`null`), schemas.ReasonMalformedJSON)
	add("trailing garbage", []byte("{"+base("h-trail")+"} {}"), schemas.ReasonMalformedJSON)
	add("metacharacters in an IP", obj("h-ip", `,"ip":"1.2.3.4'; DROP TABLE events; --"`), schemas.ReasonBadIP)
	add("metacharacters in an enum", obj("h-enum", `,"country":"' OR 1=1"`), schemas.ReasonBadValue)
	// Stored intact: every free-text field full of metacharacters.
	fields := []string{"source", "tenant", "family_id", "user_agent", "device_id", "reason", "auth_method"}
	for _, f := range fields {
		cs = append(cs, hostileCase{name: "metacharacters in " + f, id: "h-meta-" + f, value: obj("h-meta-"+f, `,"`+f+`":`+meta)})
	}
	cs = append(cs, hostileCase{name: "metacharacters in ids and attributes", id: "h-meta-ids " + hostileMeta[:20],
		value: []byte(`{"id":` + mustJSON("h-meta-ids "+hostileMeta[:20]) + `,"type":"token.refreshed","time":"` + time.Now().UTC().Format(time.RFC3339Nano) +
			`","user_id":` + meta + `,"session_id":` + meta + `,"token_id":` + meta + `,"parent_token_id":` + meta +
			`,"attributes":{` + mustJSON(hostileKey) + `:` + meta + `}}`)})
	return cs
}

func jsonString(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

func mustJSON(s string) string { q, _ := jsonString(s); return q }

// TestHostileEvents is the catalogue of hostile messages: each ends in
// events intact or in dead_letters (and the DLQ topic) with its reason,
// and every partition keeps moving past them.
func TestHostileEvents(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topic), kfake.SeedTopics(2, dlqTopic),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(16 << 20)}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close) // after the ingester's shutdown, registered later
	srv := testenv.ClickHouse(t)
	e := &env{t: t, brokers: cluster.ListenAddrs(), conn: testenv.Conn(t, srv), db: testenv.Database(t), srvAddr: srv.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := chschema.MigrateCluster(ctx, e.conn, e.db, testenv.ClusterOf(srv)); err != nil {
		t.Fatal(err)
	}
	cfg := ingest.DefaultConfig()
	cfg.FlushInterval = 100 * time.Millisecond
	e.ingester(cfg, nil)

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ProducerBatchMaxBytes(16<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cases := hostileCatalogue()
	at := map[string]hostileCase{} // "partition/offset" → case
	for i, c := range cases {
		r := &kgo.Record{Topic: topic, Partition: int32(i % 4), Key: []byte("k"), Value: c.value}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", c.name, err)
		}
		at[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = c
	}
	// A valid event after the catalogue on every partition: none is stuck.
	for p := range int32(4) {
		v := fmt.Sprintf(`{"id":"h-after-%d","type":"session.validated","time":%q,"user_id":"u","session_id":"s","outcome":"success"}`, p, time.Now().UTC().Format(time.RFC3339Nano))
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rejected := 0
	for _, c := range cases {
		if c.want != "" {
			rejected++
		}
	}
	testenv.WaitFor(t, time.Minute, "the valid event after the catalogue stored on every partition, and every rejection", func() (bool, string) {
		var n, dead uint64
		q := "SELECT (SELECT count() FROM " + e.db + ".events WHERE startsWith(id, 'h-after-')), (SELECT uniqExact(partition, offset) FROM " + e.db + ".dead_letters)"
		if err := e.conn.QueryRow(ctx, q).Scan(&n, &dead); err != nil {
			return false, err.Error()
		}
		return n == 4 && dead == uint64(rejected), fmt.Sprintf("%d of 4 after-events, %d of %d dead letters", n, dead, rejected)
	})

	// Each rejected message is in dead_letters once, with its reason.
	rows, err := e.conn.Query(ctx, "SELECT partition, offset, reason, length(value) FROM "+e.db+".dead_letters FINAL")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for rows.Next() {
		var p uint32
		var off int64
		var reason string
		var size uint64
		if err := rows.Scan(&p, &off, &reason, &size); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("%d/%d", p, off)
		c, ok := at[k]
		if !ok {
			t.Errorf("dead letter at %s is not from the catalogue (%s)", k, reason)
			continue
		}
		seen[k] = true
		if c.want == "" {
			t.Errorf("%s: dead-lettered (%s), want stored", c.name, reason)
		} else if reason != string(c.want) {
			t.Errorf("%s: dead-lettered with %s, want %s", c.name, reason, c.want)
		}
		if size != uint64(len(c.value)) {
			t.Errorf("%s: dead_letters keeps %d bytes of %d", c.name, size, len(c.value))
		}
	}
	rows.Close()
	for k, c := range at {
		if c.want != "" && !seen[k] {
			t.Errorf("%s: not in dead_letters (want %s)", c.name, c.want)
		}
	}
	// Each stored one is there once, every field as sent.
	type stored struct {
		n                                                                      int
		source, tenant, family, ua, device, reason, auth, user, session, token string
		attrKeys, attrValues                                                   []string
	}
	byID := map[string]*stored{}
	rows, err = e.conn.Query(ctx, "SELECT id, source, tenant, family_id, user_agent, device_id, reason, auth_method, user_id, session_id, token_id, attributes.key, attributes.value FROM "+e.db+".events FINAL WHERE startsWith(id, 'h-meta-')")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var s stored
		if err := rows.Scan(&id, &s.source, &s.tenant, &s.family, &s.ua, &s.device, &s.reason, &s.auth, &s.user, &s.session, &s.token, &s.attrKeys, &s.attrValues); err != nil {
			t.Fatal(err)
		}
		if prev := byID[id]; prev != nil {
			s.n = prev.n
		}
		s.n++
		byID[id] = &s
	}
	rows.Close()
	for _, c := range cases {
		if c.want != "" {
			continue
		}
		s := byID[c.id]
		if s == nil || s.n != 1 {
			t.Errorf("%s: %v rows with id %q, want 1", c.name, s, c.id)
			continue
		}
		field := strings.TrimPrefix(c.id, "h-meta-")
		got := map[string]string{"source": s.source, "tenant": s.tenant, "family_id": s.family, "user_agent": s.ua,
			"device_id": s.device, "reason": s.reason, "auth_method": s.auth}[field]
		if strings.HasPrefix(field, "ids") {
			for name, v := range map[string]string{"user_id": s.user, "session_id": s.session, "token_id": s.token} {
				if v != hostileMeta {
					t.Errorf("%s: %s stored as %q, want %q", c.name, name, v, hostileMeta)
				}
			}
			if len(s.attrKeys) != 1 || s.attrKeys[0] != hostileKey || s.attrValues[0] != hostileMeta {
				t.Errorf("%s: attributes stored as %q = %q", c.name, s.attrKeys, s.attrValues)
			}
		} else if got != hostileMeta {
			t.Errorf("%s: stored as %q, want %q", c.name, got, hostileMeta)
		}
	}
	// The DLQ topic holds every rejection with its reason header.
	dlq, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(dlqTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(32<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	got := map[string]string{}
	for len(got) < rejected && ctx.Err() == nil {
		dlq.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			got[h["vigil-partition"]+"/"+h["vigil-offset"]] = h["vigil-reason"]
		})
	}
	for k, c := range at {
		if c.want != "" && got[k] != string(c.want) {
			t.Errorf("%s: DLQ topic has reason %q, want %s", c.name, got[k], c.want)
		}
	}
}

// TestHostileCatalogueDecodes checks the catalogue against the decoder
// alone, with ingest's default limits, before TestHostileEvents sends it
// through Kafka and ClickHouse.
func TestHostileCatalogueDecodes(t *testing.T) {
	cfg := ingest.DefaultConfig()
	dec := schemas.NewDecoder(schemas.DecoderConfig{MaxMessageBytes: cfg.MaxMessageBytes, MaxFutureSkew: cfg.MaxFutureSkew, Now: time.Now})
	for _, c := range hostileCatalogue() {
		var ev schemas.Event
		err := dec.Decode(c.value, &ev)
		if got := schemas.ReasonOf(err); got != c.want {
			t.Errorf("%s: %v (reason %q), want reason %q", c.name, err, got, c.want)
		}
		if c.want == "" && ev.ID != c.id {
			t.Errorf("%s: id %q, want %q", c.name, ev.ID, c.id)
		}
	}
}
