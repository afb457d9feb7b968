package bench

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// KafkaEngineConfig is the ClickHouse server configuration the Kafka
// engine contender needs (chserver.Options.ExtraConfig and ExtraProfile):
// a new consumer group starts at the earliest offset (librdkafka's default
// is the latest), and CSV fields are tab-separated so that one JSON
// message is one field.
const (
	KafkaEngineConfig  = "<kafka><auto_offset_reset>smallest</auto_offset_reset></kafka>"
	KafkaEngineProfile = "<format_csv_delimiter>&#9;</format_csv_delimiter>"
)

// execScript runs one of sql/*.sql statement by statement, its {name}
// placeholders filled from vars.
func execScript(ctx context.Context, conn driver.Conn, file string, vars map[string]string) error {
	b, err := sqlFiles.ReadFile("sql/" + file)
	if err != nil {
		return err
	}
	pairs := make([]string, 0, 2*len(vars))
	for k, v := range vars {
		pairs = append(pairs, "{"+k+"}", v)
	}
	text := strings.NewReplacer(pairs...).Replace(string(b))
	for _, stmt := range strings.Split(text, ";\n") {
		lines := strings.Split(stmt, "\n")
		kept := lines[:0]
		for _, l := range lines {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				kept = append(kept, l)
			}
		}
		stmt = strings.TrimSpace(strings.Join(kept, "\n"))
		if stmt == "" {
			continue
		}
		if err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("bench: %s: %w\n%s", file, err, stmt)
		}
	}
	return nil
}

// StartKafkaEngine makes ClickHouse consume topic from broker into db's
// events and event_subjects (db migrated) through its Kafka table engine
// and materialized views, in consumer group group; consumption starts when
// it returns, with consumers consumers. Stop it with StopKafkaEngine. The
// server needs KafkaEngineConfig and KafkaEngineProfile.
func StartKafkaEngine(ctx context.Context, conn driver.Conn, db, broker, topic, group string, consumers int) error {
	return execScript(ctx, conn, "kafka_engine.sql", map[string]string{"db": db, "broker": broker, "topic": topic, "group": group, "consumers": strconv.Itoa(consumers)})
}

// StopKafkaEngine drops the Kafka table (after its current block) and the
// views.
func StopKafkaEngine(ctx context.Context, conn driver.Conn, db string) error {
	var errs []error
	for _, t := range []string{"kafka_raw", "kafka_mv", "kafka_mv_subjects"} {
		errs = append(errs, conn.Exec(ctx, "DROP TABLE IF EXISTS "+db+"."+t))
	}
	return errors.Join(errs...)
}

// Pipe is `kcat -C … | clickhouse-client --query "INSERT … FORMAT
// JSONEachRow"` running.
type Pipe struct {
	kcat, client *exec.Cmd
	done         chan error
	stderr       strings.Builder
}

// StartPipe creates the pipe's input table in db (migrated) and starts
// kcat reading every partition of topic from the beginning to its end,
// piped into clickhouse-client inserting into it. kcat and client are the
// binaries' paths; port is the server's native port.
func StartPipe(ctx context.Context, conn driver.Conn, db, kcat, client, broker, topic string, port int) (*Pipe, error) {
	if err := execScript(ctx, conn, "pipe.sql", map[string]string{"db": db}); err != nil {
		return nil, err
	}
	p := &Pipe{done: make(chan error, 1)}
	p.kcat = exec.Command(kcat, "-C", "-b", broker, "-t", topic, "-o", "beginning", "-e", "-q")
	p.client = exec.Command(client, "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--input_format_skip_unknown_fields=1",
		"--query", "INSERT INTO "+db+".pipe_in FORMAT JSONEachRow")
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.kcat.Stdout, p.client.Stdin = w, r
	p.kcat.Stderr, p.client.Stderr = &p.stderr, &p.stderr
	p.client.Stdout = io.Discard
	if err := p.client.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("bench: start clickhouse-client: %w", err)
	}
	if err := p.kcat.Start(); err != nil {
		r.Close()
		w.Close()
		_ = p.client.Process.Kill()
		_ = p.client.Wait()
		return nil, fmt.Errorf("bench: start kcat: %w", err)
	}
	r.Close() // the children hold their ends
	w.Close()
	go func() {
		errK := p.kcat.Wait()
		errC := p.client.Wait()
		if errK != nil || errC != nil {
			p.done <- fmt.Errorf("kcat: %v, clickhouse-client: %v: %s", errK, errC, strings.TrimSpace(p.stderr.String()))
			return
		}
		p.done <- nil
	}()
	return p, nil
}

// Failed reports, without waiting, an error if the pipe has ended badly.
func (p *Pipe) Failed() error {
	select {
	case err := <-p.done:
		if err != nil {
			p.done <- err
			return err
		}
		p.done <- nil
		return nil
	default:
		return nil
	}
}

// Wait waits for both processes to end (kcat at the end of the topic,
// then clickhouse-client after its insert) and returns their combined CPU
// time and the larger peak RSS.
func (p *Pipe) Wait(ctx context.Context) (Usage, error) {
	select {
	case err := <-p.done:
		if err != nil {
			return Usage{}, err
		}
	case <-ctx.Done():
		_ = p.kcat.Process.Kill()
		_ = p.client.Process.Kill()
		<-p.done
		return Usage{}, ctx.Err()
	}
	return sum(rusage(p.kcat), rusage(p.client)), nil
}

// rusage is an ended process's CPU time and peak RSS.
func rusage(c *exec.Cmd) Usage {
	if c.ProcessState == nil {
		return Usage{}
	}
	u := Usage{CPU: c.ProcessState.UserTime() + c.ProcessState.SystemTime()}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.PeakRSS = ru.Maxrss << 10 // KiB on Linux
	}
	return u
}

// sum adds CPU times and keeps the larger peak.
func sum(us ...Usage) Usage {
	var t Usage
	for _, u := range us {
		t.CPU += u.CPU
		t.PeakRSS = max(t.PeakRSS, u.PeakRSS)
	}
	return t
}

// Process is a contender process started by the caller (vigil run).
type Process struct {
	Cmd  *exec.Cmd
	done chan error
}

// StartProcess starts cmd and watches for its end.
func StartProcess(cmd *exec.Cmd) (*Process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// Failed reports, without waiting, why the process ended early.
func (p *Process) Failed() error {
	select {
	case err := <-p.done:
		p.done <- err
		if err == nil {
			err = errors.New("exited")
		}
		return err
	default:
		return nil
	}
}

// Usage reads the running process's CPU time and peak RSS.
func (p *Process) Usage() (Usage, error) { return ReadUsage(p.Cmd.Process.Pid) }

// Stop sends SIGTERM and waits up to timeout, then kills.
func (p *Process) Stop(timeout time.Duration) error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		return fmt.Errorf("bench: killed after %s: %w", timeout, err)
	}
}
