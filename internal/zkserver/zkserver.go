// Package zkserver runs a throwaway standalone ZooKeeper (Debian's
// zookeeper package) on a free loopback port in its own directory: the
// coordination service a replicated ClickHouse cluster needs, for tests.
package zkserver

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

// ErrNotInstalled means Java or ZooKeeper's jar was not found.
var ErrNotInstalled = errors.New("zookeeper is not installed (Debian: apt-get install zookeeper)")

// Jar is where Debian's zookeeper package puts the server; VIGIL_ZOOKEEPER_JAR overrides it.
const Jar = "/usr/share/java/zookeeper.jar"

// Server is one running standalone ZooKeeper; Close is safe to call more than once.
type Server struct {
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start writes a config in a temporary directory and starts ZooKeeper,
// returning once it answers the "srvr" command or ctx ends.
func Start(ctx context.Context) (*Server, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("%w: no java on PATH", ErrNotInstalled)
	}
	jar := Jar
	if v := os.Getenv("VIGIL_ZOOKEEPER_JAR"); v != "" {
		jar = v
	}
	if _, err := os.Stat(jar); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	dir, err := os.MkdirTemp("", "vigil-zookeeper-")
	if err != nil {
		return nil, fmt.Errorf("zkserver: %w", err)
	}
	s := &Server{dir: dir}
	free, err := ports.Free(1)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.port = free[0]
	// A short tick keeps session expiry (and so a killed ClickHouse
	// replica's ephemeral nodes) quick; 4lw "srvr" is for the readiness check.
	cfg := fmt.Sprintf("tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxSessionTimeout=30000\n4lw.commands.whitelist=srvr,ruok\n",
		filepath.Join(dir, "data"), s.port)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("zkserver: %w", err)
	}
	out, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("zkserver: %w", err)
	}
	cmd := exec.Command(java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", jar, "org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(dir, "zoo.cfg"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("zkserver: start java: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(s.done) }()
	if err := s.wait(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Addr returns the client address, e.g. "127.0.0.1:41234".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Host returns the client host, always 127.0.0.1.
func (s *Server) Host() string { return "127.0.0.1" }

// Port returns the client port.
func (s *Server) Port() int { return s.port }

func (s *Server) wait(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Ready when it answers, and when it is this process that does:
		// a port chosen free can be taken by another server starting
		// alongside.
		if mode, err := srvr(s.Addr()); err == nil && strings.Contains(mode, "Mode:") {
			if mine, known := ports.ListenedBy(s.cmd.Process.Pid, s.port); mine || !known {
				return nil
			}
		}
		select {
		case <-s.done:
			con, _ := os.ReadFile(filepath.Join(s.dir, "console.log"))
			if len(con) > 2000 {
				con = con[len(con)-2000:]
			}
			return fmt.Errorf("zkserver: zookeeper exited during start: %s", con)
		case <-ctx.Done():
			return fmt.Errorf("zkserver: waiting for %s: %w", s.Addr(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("zkserver: %s did not answer within 60s", s.Addr())
		}
	}
}

// srvr sends ZooKeeper's "srvr" four-letter command and returns the answer.
func srvr(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return "", err
	}
	var b strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String(), nil
		}
	}
}

// Close stops ZooKeeper and removes its directory.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		s.cmd = nil
	}
	return os.RemoveAll(s.dir)
}
