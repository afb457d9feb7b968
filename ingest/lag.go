package ingest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// PartitionLag is one partition's consumer lag.
type PartitionLag struct {
	Partition int
	LogEnd    int64 // offset of the next message to be produced
	Committed int64 // the group's committed offset; -1 if none
	Messages  int64 // LogEnd - Committed (or - log start when nothing is committed)
}

// Lag computes per-partition lag, ordered by partition, of the group from its committed offsets and
// the log end offsets of the topic, for every partition (owned or not).
func (in *Ingester) Lag(ctx context.Context) ([]PartitionLag, error) {
	md, err := in.lagc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{in.o.Topic}})
	if err != nil {
		return nil, fmt.Errorf("lag: metadata: %w", err)
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Name != in.o.Topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("lag: metadata %s: %w", in.o.Topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	lo, err := in.lagc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{in.o.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("lag: list offsets: %w", err)
	}
	of, err := in.lagc.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: in.o.Group, Topics: map[string][]int{in.o.Topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("lag: offset fetch: %w", err)
	}
	if of.Error != nil {
		return nil, fmt.Errorf("lag: offset fetch: %w", of.Error)
	}
	committed := map[int]int64{}
	for _, p := range of.Topics[in.o.Topic] {
		if p.Error == nil {
			committed[p.Partition] = p.CommittedOffset
		}
	}
	out := make([]PartitionLag, 0, len(parts))
	for _, p := range lo.Topics[in.o.Topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("lag: list offsets partition %d: %w", p.Partition, p.Error)
		}
		c, ok := committed[p.Partition]
		if !ok {
			c = -1
		}
		base := c
		if base < 0 {
			base = p.FirstOffset
		}
		out = append(out, PartitionLag{Partition: p.Partition, LogEnd: p.LastOffset, Committed: c, Messages: max(0, p.LastOffset-base)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out, nil
}

// lagLoop refreshes the lag gauges every lag_interval.
func (in *Ingester) lagLoop() {
	t := time.NewTicker(in.cfg.LagInterval)
	defer t.Stop()
	for {
		select {
		case <-in.runCtx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(in.runCtx, in.cfg.LagInterval)
		lags, err := in.Lag(ctx)
		cancel()
		if err != nil {
			if in.runCtx.Err() == nil {
				in.log.Warn("lag", "err", err)
			}
			continue
		}
		now := in.o.Now()
		for _, l := range lags {
			p := strconv.Itoa(l.Partition)
			in.m.LagMessages.WithLabelValues(in.o.Topic, p).Set(float64(l.Messages))
			in.m.CommittedOff.WithLabelValues(in.o.Topic, p).Set(float64(l.Committed))
			if v, ok := in.parts.Load(l.Partition); ok {
				st := v.(*partitionState)
				st.mu.Lock()
				secs := 0.0
				if len(st.pending) > 0 && l.Messages > 0 {
					secs = max(0, now.Sub(st.pending[0]).Seconds())
				}
				st.mu.Unlock()
				in.m.LagSeconds.WithLabelValues(in.o.Topic, p).Set(secs)
				in.m.BufferFill.WithLabelValues(p).Set(float64(len(st.queue)) / float64(cap(st.queue)))
			} else {
				in.m.LagSeconds.DeleteLabelValues(in.o.Topic, p)
				in.m.BufferFill.DeleteLabelValues(p)
			}
		}
	}
}
