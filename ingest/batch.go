package ingest

import (
	"time"

	"github.com/vigilhq/vigil/schemas"
)

// EventColumns holds a batch of events column by column, in the column order
// of EventInsertColumns, ready for a columnar ClickHouse insert. Keeping the
// columns (not the clickhouse-go batch) lets a failed insert be rebuilt.
type EventColumns struct {
	ID, Source, Tenant, UserID, SessionID, FamilyID []string
	TokenID, ParentTokenID, IP, UserAgent, DeviceID []string
	Country, Reason, AuthMethod                     []string
	Type, Outcome, Actor                            []int8
	Time                                            []time.Time
	TimeNS, KafkaOffset                             []int64
	ASN, KafkaPartition                             []uint32
	Latency                                         []*float64
	SampleRate                                      []float64
	AttrKeys, AttrValues                            [][]string
	latencyStore                                    []float64 // backing array for Latency pointers
}

// EventInsertColumns lists the events columns in the order EventColumns.Values returns them.
var EventInsertColumns = []string{
	"id", "type", "time", "time_ns", "source", "tenant", "user_id", "session_id", "family_id",
	"token_id", "parent_token_id", "ip", "user_agent", "device_id", "country", "asn",
	"outcome", "reason", "actor", "latency_ms", "auth_method", "sample_rate",
	"attributes.key", "attributes.value", "kafka_partition", "kafka_offset",
}

// Len returns the number of rows.
func (c *EventColumns) Len() int { return len(c.ID) }

// Reset empties the columns, keeping their capacity but no references to
// the previous batch's strings.
func (c *EventColumns) Reset() {
	for _, col := range []*[]string{&c.ID, &c.Source, &c.Tenant, &c.UserID, &c.SessionID, &c.FamilyID,
		&c.TokenID, &c.ParentTokenID, &c.IP, &c.UserAgent, &c.DeviceID, &c.Country, &c.Reason, &c.AuthMethod} {
		clear((*col)[:cap(*col)])
		*col = (*col)[:0]
	}
	c.Type, c.Outcome, c.Actor = c.Type[:0], c.Outcome[:0], c.Actor[:0]
	c.Time, c.TimeNS, c.KafkaOffset = c.Time[:0], c.TimeNS[:0], c.KafkaOffset[:0]
	c.ASN, c.KafkaPartition = c.ASN[:0], c.KafkaPartition[:0]
	c.Latency, c.SampleRate, c.latencyStore = c.Latency[:0], c.SampleRate[:0], c.latencyStore[:0]
	clear(c.AttrKeys[:cap(c.AttrKeys)])
	clear(c.AttrValues[:cap(c.AttrValues)])
	c.AttrKeys, c.AttrValues = c.AttrKeys[:0], c.AttrValues[:0]
}

// Append adds one event read from the given partition and offset.
func (c *EventColumns) Append(e *schemas.Event, partition int32, offset int64) {
	c.ID = append(c.ID, e.ID)
	c.Type = append(c.Type, int8(e.Type))
	c.Time = append(c.Time, e.Time)
	c.TimeNS = append(c.TimeNS, e.Time.UnixNano())
	c.Source = append(c.Source, e.Source)
	c.Tenant = append(c.Tenant, e.Tenant)
	c.UserID = append(c.UserID, e.UserID)
	c.SessionID = append(c.SessionID, e.SessionID)
	c.FamilyID = append(c.FamilyID, e.FamilyID)
	c.TokenID = append(c.TokenID, e.TokenID)
	c.ParentTokenID = append(c.ParentTokenID, e.ParentTokenID)
	c.IP = append(c.IP, e.IP)
	c.UserAgent = append(c.UserAgent, e.UserAgent)
	c.DeviceID = append(c.DeviceID, e.DeviceID)
	c.Country = append(c.Country, e.Country)
	c.ASN = append(c.ASN, e.ASN)
	c.Outcome = append(c.Outcome, int8(e.Outcome))
	c.Reason = append(c.Reason, e.Reason)
	c.Actor = append(c.Actor, int8(e.Actor))
	c.Latency = append(c.Latency, nil) // pointers are fixed up in Values: latencyStore may move while growing
	c.latencyStore = append(c.latencyStore, e.LatencyMS)
	if !e.HasLatency {
		c.latencyStore[len(c.latencyStore)-1] = -1
	}
	c.AuthMethod = append(c.AuthMethod, e.AuthMethod)
	c.SampleRate = append(c.SampleRate, e.SampleRate)
	var keys, vals []string
	if n := len(e.Attributes); n > 0 {
		kv := make([]string, 2*n)
		keys, vals = kv[:n:n], kv[n:]
		for i, a := range e.Attributes {
			keys[i], vals[i] = a.Key, a.Value
		}
	}
	c.AttrKeys = append(c.AttrKeys, keys)
	c.AttrValues = append(c.AttrValues, vals)
	c.KafkaPartition = append(c.KafkaPartition, uint32(partition))
	c.KafkaOffset = append(c.KafkaOffset, offset)
}

// view returns rows [i, j) sharing c's memory.
func (c *EventColumns) view(i, j int) *EventColumns {
	return &EventColumns{
		ID: c.ID[i:j], Source: c.Source[i:j], Tenant: c.Tenant[i:j], UserID: c.UserID[i:j],
		SessionID: c.SessionID[i:j], FamilyID: c.FamilyID[i:j], TokenID: c.TokenID[i:j],
		ParentTokenID: c.ParentTokenID[i:j], IP: c.IP[i:j], UserAgent: c.UserAgent[i:j],
		DeviceID: c.DeviceID[i:j], Country: c.Country[i:j], Reason: c.Reason[i:j], AuthMethod: c.AuthMethod[i:j],
		Type: c.Type[i:j], Outcome: c.Outcome[i:j], Actor: c.Actor[i:j], Time: c.Time[i:j],
		TimeNS: c.TimeNS[i:j], KafkaOffset: c.KafkaOffset[i:j], ASN: c.ASN[i:j], KafkaPartition: c.KafkaPartition[i:j],
		Latency: c.Latency[i:j], SampleRate: c.SampleRate[i:j], AttrKeys: c.AttrKeys[i:j], AttrValues: c.AttrValues[i:j],
		latencyStore: c.latencyStore[i:j],
	}
}

// Values returns one slice per column of EventInsertColumns, for
// batch.Column(i).Append.
func (c *EventColumns) Values() []any {
	for i := range c.Latency {
		if c.latencyStore[i] < 0 {
			c.Latency[i] = nil
		} else {
			c.Latency[i] = &c.latencyStore[i]
		}
	}
	// clickhouse-go wants empty, not nil, arrays.
	for i := range c.AttrKeys {
		if c.AttrKeys[i] == nil {
			c.AttrKeys[i], c.AttrValues[i] = emptyStrings, emptyStrings
		}
	}
	return []any{
		c.ID, c.Type, c.Time, c.TimeNS, c.Source, c.Tenant, c.UserID, c.SessionID, c.FamilyID,
		c.TokenID, c.ParentTokenID, c.IP, c.UserAgent, c.DeviceID, c.Country, c.ASN,
		c.Outcome, c.Reason, c.Actor, c.Latency, c.AuthMethod, c.SampleRate,
		c.AttrKeys, c.AttrValues, c.KafkaPartition, c.KafkaOffset,
	}
}

var emptyStrings = []string{}

// DeadLetter is one rejected message, kept whole for the DLQ topic and the
// dead_letters table.
type DeadLetter struct {
	Topic       string
	Partition   int32
	Offset      int64
	MessageTime time.Time // Kafka record timestamp
	ReceivedAt  time.Time
	Reason      schemas.Reason
	Field       string
	Detail      string
	Key         []byte
	Value       []byte
	Headers     []Header
}

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// DeadLetterInsertColumns lists the dead_letters columns in insert order.
var DeadLetterInsertColumns = []string{
	"topic", "partition", "offset", "message_time", "received_at", "reason", "field", "detail",
	"key", "value", "headers.key", "headers.value",
}

// deadLetterValues returns one slice per column of DeadLetterInsertColumns.
func deadLetterValues(dl []DeadLetter) []any {
	n := len(dl)
	topic, reason, field, detail := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	key, value := make([]string, n), make([]string, n)
	part := make([]uint32, n)
	off := make([]int64, n)
	mt, rt := make([]time.Time, n), make([]time.Time, n)
	hk, hv := make([][]string, n), make([][]string, n)
	for i, d := range dl {
		topic[i], part[i], off[i] = d.Topic, uint32(d.Partition), d.Offset
		mt[i], rt[i] = d.MessageTime, d.ReceivedAt
		reason[i], field[i], detail[i] = string(d.Reason), d.Field, d.Detail
		key[i], value[i] = string(d.Key), string(d.Value)
		hk[i], hv[i] = make([]string, len(d.Headers)), make([]string, len(d.Headers))
		for j, h := range d.Headers {
			hk[i][j], hv[i][j] = h.Key, string(h.Value)
		}
	}
	return []any{topic, part, off, mt, rt, reason, field, detail, key, value, hk, hv}
}
