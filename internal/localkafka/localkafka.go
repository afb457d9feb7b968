// Package localkafka starts an in-process Kafka (franz-go's kfake) on a
// loopback TCP port, for tests and `vigil demo`. kafka-go clients, kcat and
// any other Kafka client can connect to it.
package localkafka

import "github.com/twmb/franz-go/pkg/kfake"

// Start starts a one-broker cluster with the given topics (name → partitions);
// the caller closes it. Its addresses are in ListenAddrs.
func Start(topics map[string]int) (*kfake.Cluster, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation()}
	for name, parts := range topics {
		opts = append(opts, kfake.SeedTopics(int32(parts), name))
	}
	return kfake.NewCluster(opts...)
}
