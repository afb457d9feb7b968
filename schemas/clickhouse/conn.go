package clickhouse

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ConnOptions says how to reach ClickHouse over the native protocol.
type ConnOptions struct {
	Addr         []string
	Username     string
	Password     string
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	MaxOpenConns int
	Compression  string // auto (none when every address is loopback, else lz4), none, lz4 or zstd
	TLS          *tls.Config
	// Database, when set, is the connection's default database, for
	// queries with unqualified table names (schemas/queries); vigil's own
	// queries qualify every table and leave it empty.
	Database string
	// Cluster, when set, names the ClickHouse cluster the schema was
	// migrated on (vigil migrate --cluster): inserts into its Distributed
	// tables then return only once every shard has its rows
	// (insert_distributed_sync), so a committed Kafka offset means stored
	// data. (vigil's queries say GLOBAL IN where a subquery reads a
	// Distributed table, so they need no distributed_product_mode, which
	// 18.16 could not take from a client anyway: it accepts only numeric
	// settings.)
	Cluster string
}

// ClusterSettings are the settings every query runs with on a cluster.
var ClusterSettings = map[string]any{
	"insert_distributed_sync": 1,
}

// Open connects and pings ClickHouse. Unless o.Database is set the
// connection has no default database: vigil qualifies every table with its
// database name.
func Open(ctx context.Context, o ConnOptions) (driver.Conn, error) {
	opts := &chgo.Options{
		Addr:             o.Addr,
		Auth:             chgo.Auth{Username: o.Username, Password: o.Password, Database: o.Database},
		DialTimeout:      o.DialTimeout,
		ReadTimeout:      o.ReadTimeout,
		MaxOpenConns:     o.MaxOpenConns,
		MaxIdleConns:     o.MaxOpenConns,
		ConnMaxLifetime:  time.Hour,
		TLS:              o.TLS,
		ConnOpenStrategy: chgo.ConnOpenInOrder,
	}
	if o.Cluster != "" {
		opts.Settings = chgo.Settings{}
		for k, v := range ClusterSettings {
			opts.Settings[k] = v
		}
	}
	switch o.Compression {
	case "auto", "":
		if !allLoopback(o.Addr) {
			opts.Compression = &chgo.Compression{Method: chgo.CompressionLZ4}
		}
	case "lz4":
		opts.Compression = &chgo.Compression{Method: chgo.CompressionLZ4}
	case "zstd":
		opts.Compression = &chgo.Compression{Method: chgo.CompressionZSTD}
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	conn, err := chgo.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open %v: %w", o.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse: ping %v: %w", o.Addr, err)
	}
	return conn, nil
}

// allLoopback reports whether every host:port in addrs is on this
// machine (localhost or a loopback IP): compressing blocks for the
// loopback costs both ends CPU and saves no network.
func allLoopback(addrs []string) bool {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		if host == "localhost" {
			continue
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return len(addrs) > 0
}
