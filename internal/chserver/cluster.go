package chserver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/vigilhq/vigil/internal/ports"
)

// ClusterOptions configures a local ClickHouse cluster: Shards × Replicas
// servers on loopback, replicating through one ZooKeeper.
type ClusterOptions struct {
	// Name is the cluster's name in remote_servers (ON CLUSTER, Distributed); "" means "vigil".
	Name string
	// Shards is the number of shards; 0 means 1.
	Shards int
	// Replicas is the number of replicas per shard; 0 means 2.
	Replicas int
	// ZooKeeper is the coordination service's host:port.
	ZooKeeper string
	// ExtraProfile is XML added to every server's default settings profile.
	ExtraProfile string
}

// Cluster is a set of running servers that form one ClickHouse cluster:
// each has the same remote_servers section, its own {shard} and {replica}
// macros, and replicates through ZooKeeper.
type Cluster struct {
	// Name is the cluster's name, for ON CLUSTER and Distributed tables.
	Name string
	// Shards holds the servers, Shards[shard][replica].
	Shards [][]*Server
}

var clusterNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// StartCluster starts every server of the cluster at once and returns when
// all accept connections; on error it stops the ones it started.
func StartCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	if o.Name == "" {
		o.Name = "vigil"
	}
	if !clusterNameRE.MatchString(o.Name) {
		return nil, fmt.Errorf("chserver: bad cluster name %q", o.Name)
	}
	if o.Shards <= 0 {
		o.Shards = 1
	}
	if o.Replicas <= 0 {
		o.Replicas = 2
	}
	host, port, ok := strings.Cut(o.ZooKeeper, ":")
	if !ok {
		return nil, fmt.Errorf("chserver: ZooKeeper address %q is not host:port", o.ZooKeeper)
	}
	if _, err := Binary(); err != nil {
		return nil, err
	}
	// Every port of every server is chosen at once, so that no server's
	// port is handed to another that starts alongside it.
	type node struct{ tcp, http, interserver int }
	layout := make([][]node, o.Shards)
	free, err := ports.Free(3 * o.Shards * o.Replicas)
	if err != nil {
		return nil, err
	}
	var remote strings.Builder
	fmt.Fprintf(&remote, "<remote_servers><%s>", o.Name)
	for s := range layout {
		layout[s] = make([]node, o.Replicas)
		remote.WriteString("<shard><internal_replication>true</internal_replication>")
		for r := range layout[s] {
			layout[s][r] = node{tcp: free[0], http: free[1], interserver: free[2]}
			free = free[3:]
			fmt.Fprintf(&remote, "<replica><host>127.0.0.1</host><port>%d</port></replica>", layout[s][r].tcp)
		}
		remote.WriteString("</shard>")
	}
	fmt.Fprintf(&remote, "</%s></remote_servers>", o.Name)

	c := &Cluster{Name: o.Name, Shards: make([][]*Server, o.Shards)}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for s := range layout {
		c.Shards[s] = make([]*Server, o.Replicas)
		for r, p := range layout[s] {
			extra := fmt.Sprintf(`<interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>%d</interserver_http_port>
  <zookeeper><node><host>%s</host><port>%s</port></node><session_timeout_ms>10000</session_timeout_ms></zookeeper>
  <macros><shard>%d</shard><replica>s%dr%d</replica></macros>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  %s`, p.interserver, host, port, s+1, s+1, r+1, remote.String())
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv, err := Start(ctx, Options{TCPPort: p.tcp, HTTPPort: p.http, ExtraConfig: extra, ExtraProfile: o.ExtraProfile})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("shard %d replica %d: %w", s+1, r+1, err))
					return
				}
				c.Shards[s][r] = srv
			}()
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Nodes returns every server, shard by shard.
func (c *Cluster) Nodes() []*Server {
	var out []*Server
	for _, rs := range c.Shards {
		out = append(out, rs...)
	}
	return out
}

// Addrs returns every server's native-protocol address, shard by shard.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, s := range c.Nodes() {
		out = append(out, s.Addr())
	}
	return out
}

// Close stops every server and removes their directories.
func (c *Cluster) Close() error {
	var errs []error
	for _, s := range c.Nodes() {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
