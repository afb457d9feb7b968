// Package chserver runs a throwaway local clickhouse-server process on free
// loopback ports in its own directory, for tests and for `vigil demo`.
//
// It supports Debian's clickhouse-server 18.16 (the separate
// clickhouse-server binary) and current single-binary releases
// (`clickhouse server`).
package chserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/internal/ports"
)

// ErrNotInstalled means no clickhouse-server binary was found on PATH.
var ErrNotInstalled = errors.New("clickhouse-server is not installed (Debian: apt-get install clickhouse-server clickhouse-client)")

// Options configures a Server; the zero value picks a temp dir and free ports.
type Options struct {
	// Dir holds the config, data and logs; "" makes a temporary directory removed by Close.
	Dir string
	// TCPPort is the native protocol port; 0 picks a free one.
	TCPPort int
	// HTTPPort is the HTTP interface's port; 0 picks a free one.
	HTTPPort int
	// Stdout receives the server's console output; nil discards it.
	Stdout *os.File
	// ExtraConfig is XML added inside config.xml's root element, e.g. a
	// <kafka> section for the Kafka table engine.
	ExtraConfig string
	// ExtraProfile is XML added to the default settings profile.
	ExtraProfile string
	// ExtraUsers is XML added inside users.xml's <users>, e.g. a user
	// with a password.
	ExtraUsers string
}

// Server is one running (or stopped) clickhouse-server process; its methods
// are safe for concurrent use.
type Server struct {
	dir     string
	ownDir  bool
	tcpPort int
	bin     []string

	extraConfig, extraProfile string
	extraUsers                string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the command that starts a ClickHouse server, or ErrNotInstalled.
func Binary() ([]string, error) {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return []string{p}, nil
	}
	if p, err := exec.LookPath("clickhouse"); err == nil {
		return []string{p, "server"}, nil
	}
	return nil, ErrNotInstalled
}

// Start writes a config for a private server and starts it, returning once
// it accepts native-protocol connections or ctx ends.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{dir: opts.Dir, tcpPort: opts.TCPPort, bin: bin, extraConfig: opts.ExtraConfig, extraProfile: opts.ExtraProfile, extraUsers: opts.ExtraUsers}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "vigil-clickhouse-"); err != nil {
			return nil, fmt.Errorf("chserver: temp dir: %w", err)
		}
		s.ownDir = true
	}
	httpPort := opts.HTTPPort
	if s.tcpPort == 0 || httpPort == 0 {
		ports, err := ports.Free(2)
		if err != nil {
			return nil, err
		}
		if s.tcpPort == 0 {
			s.tcpPort = ports[0]
		}
		if httpPort == 0 {
			httpPort = ports[1]
		}
	}
	if err := s.writeConfig(httpPort); err != nil {
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Addr returns the native protocol address, e.g. "127.0.0.1:41234".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tcpPort)) }

// Dir returns the server's directory (config, data, logs).
func (s *Server) Dir() string { return s.dir }

// PID returns the running server's process id, or 0 when it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	select {
	case <-s.done:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	args := append(append([]string{}, s.bin[1:]...), "--config-file="+filepath.Join(s.dir, "config.xml"))
	cmd := exec.Command(s.bin[0], args...)
	cmd.Dir = s.dir
	out, err := os.Create(filepath.Join(s.dir, "console.log"))
	if err != nil {
		return fmt.Errorf("chserver: %w", err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("chserver: start %s: %w", s.bin[0], err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			// The port is ours only if this process listens on it: a
			// port chosen free can be taken by another server starting
			// alongside, whose listener would answer the dial.
			if mine, known := ports.ListenedBy(cmd.Process.Pid, s.tcpPort); mine || !known {
				return nil
			}
		}
		select {
		case <-done:
			s.cmd = nil
			log, _ := os.ReadFile(filepath.Join(s.dir, "server.err.log"))
			con, _ := os.ReadFile(filepath.Join(s.dir, "console.log"))
			return fmt.Errorf("chserver: clickhouse-server exited during start: %s%s", tail(con), tail(log))
		case <-ctx.Done():
			return fmt.Errorf("chserver: waiting for %s: %w", s.Addr(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chserver: %s did not accept connections within 30s", s.Addr())
		}
	}
}

// LogTail returns the end of the server's error log and console output,
// for a test to show when the server misbehaved.
func (s *Server) LogTail() string {
	log, _ := os.ReadFile(filepath.Join(s.dir, "server.err.log"))
	con, _ := os.ReadFile(filepath.Join(s.dir, "console.log"))
	return tail(con) + tail(log)
}

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart(ctx context.Context) error { return s.start(ctx) }

// Stop terminates the server gracefully (SIGTERM, then SIGKILL after 10s) and
// waits for it to exit; the data stays for Restart. Stopping twice is a no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
	return nil
}

// Kill ends the server at once (SIGKILL to its process group: a crash,
// no flush) and waits for it to exit; the data stays for Restart.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
	return nil
}

// Close stops the server and removes its directory if Start created it.
func (s *Server) Close() error {
	err := s.Stop()
	if s.ownDir {
		if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

func (s *Server) writeConfig(httpPort int) error {
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return fmt.Errorf("chserver: %w", err)
		}
	}
	cfg := fmt.Sprintf(configXML, s.dir, s.tcpPort, httpPort)
	cfg = strings.Replace(cfg, "</yandex>", s.extraConfig+"\n</yandex>", 1)
	if err := os.WriteFile(filepath.Join(s.dir, "config.xml"), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("chserver: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "users.xml"), []byte(strings.NewReplacer("</max_memory_usage>", "</max_memory_usage>"+s.extraProfile, "</users>", s.extraUsers+"</users>").Replace(usersXML)), 0o644); err != nil {
		return fmt.Errorf("chserver: %w", err)
	}
	return nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// configXML is a minimal server config: loopback only, UTC, small caches.
// Placeholders: dir, tcp port, http port.
const configXML = `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>%[1]s/server.log</log>
    <errorlog>%[1]s/server.err.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]d</tcp_port>
  <http_port>%[3]d</http_port>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
</yandex>
`

const usersXML = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
