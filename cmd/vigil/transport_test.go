package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/internal/testenv"
)

// TestKafkaSCRAMOverTLS: vigil run reaches a broker that only speaks TLS
// with SASL/SCRAM-SHA-512 (kfake) through kafka.tls and kafka.sasl, and
// stores what is produced there; with a wrong password, or without
// trusting the broker's CA, it fails at start with an error that says so.
func TestKafkaSCRAMOverTLS(t *testing.T) {
	certs := testenv.NewCerts(t)
	const user, password = "vigil", "scram-secret-Zq81xW"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(certs.Server), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", user, password),
		kfake.SeedTopics(2, "session-events"), kfake.SeedTopics(1, "vigil.dlq"), kfake.SeedTopics(1, "vigil.actions"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	srv := testenv.ClickHouse(t)
	db := testenv.Database(t)
	dir := t.TempDir()
	env := func(passwordFile, caFile string) []string {
		return []string{
			"VIGIL_KAFKA_BROKERS=" + brokers, "VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(), "VIGIL_CLICKHOUSE_DATABASE=" + db,
			"VIGIL_KAFKA_TLS_ENABLED=true", "VIGIL_KAFKA_TLS_CA_FILE=" + caFile,
			"VIGIL_KAFKA_SASL_MECHANISM=scram-sha-512", "VIGIL_KAFKA_SASL_USERNAME=" + user, "VIGIL_KAFKA_SASL_PASSWORD_FILE=" + passwordFile,
			"VIGIL_INGEST_FLUSH_INTERVAL=100ms",
		}
	}
	failsAtStart := func(name string, e []string, want ...string) {
		t.Helper()
		p := startVigil(t, e)
		select {
		case err := <-p.done:
			p.exited = true
			if err == nil {
				t.Errorf("%s: vigil run exited 0", name)
			}
		case <-time.After(2 * time.Minute):
			p.terminate(t, 30*time.Second)
			t.Errorf("%s: vigil run still running after 2 minutes", name)
		}
		out := strings.ToLower(p.out.String())
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the error does not say %q:\n%s", name, w, p.out.String())
			}
		}
		noSecrets(t, name, p.out.String(), password)
		lines := strings.Split(strings.TrimSpace(p.out.String()), "\n")
		t.Logf("%s: %s", name, lines[len(lines)-1])
	}
	failsAtStart("wrong password", env(writeSecret(t, dir, "wrong", "not-the-password"), certs.CAFile), "sasl")
	failsAtStart("broker's CA not trusted", env(writeSecret(t, dir, "right", password), ""), "certificate")

	p := startVigil(t, env(writeSecret(t, dir, "right2", password), certs.CAFile))
	testenv.WaitFor(t, time.Minute, "vigil ready over TLS and SCRAM", func() (bool, string) {
		code, body := p.get("/readyz")
		return code == 200, body
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DialTLSConfig(&tls.Config{RootCAs: certs.Pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v := fmt.Sprintf(`{"id":"tls-1","type":"session.validated","time":%q,"user_id":"u","session_id":"s","outcome":"success"}`, time.Now().UTC().Format(time.RFC3339Nano))
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "session-events", Value: []byte(v)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	conn := testenv.Conn(t, srv)
	testenv.WaitFor(t, time.Minute, "the event produced over TLS stored", func() (bool, string) {
		n := count(t, conn, "SELECT count() FROM "+db+".events WHERE id = 'tls-1'")
		return n == 1, fmt.Sprintf("%d rows", n)
	})
	p.terminate(t, 30*time.Second)
	noSecrets(t, "vigil run over TLS and SCRAM", p.out.String(), password)
}

// TestClickHouseTLSAndPassword: vigil reaches a ClickHouse that it must
// trust through clickhouse.tls and log in to as a user with a password
// (from the environment); a wrong password or an untrusted server fails
// with an error that says so and never shows the password.
func TestClickHouseTLSAndPassword(t *testing.T) {
	if _, err := chserver.Binary(); err != nil {
		testenv.Missing(t, "clickhouse-server", err)
	}
	certs := testenv.NewCerts(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	securePort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	const password = "ch-secret-Zq81xW"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := chserver.Start(ctx, chserver.Options{
		ExtraConfig: fmt.Sprintf(`<tcp_port_secure>%d</tcp_port_secure>
<openSSL><server><certificateFile>%s</certificateFile><privateKeyFile>%s</privateKeyFile>
<verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile><cacheSessions>true</cacheSessions>
<disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols><preferServerCiphers>true</preferServerCiphers></server></openSSL>`,
			securePort, certs.ServerCert, certs.ServerKey),
		ExtraUsers: `<vigil><password>` + password + `</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></vigil>`,
	})
	if err != nil {
		t.Fatalf("start clickhouse-server with TLS: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	secure := net.JoinHostPort("127.0.0.1", strconv.Itoa(securePort))
	testenv.WaitFor(t, 30*time.Second, "the secure native port listening", func() (bool, string) {
		c, err := net.Dial("tcp", secure)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	env := func(pw, ca string) map[string]string {
		return map[string]string{
			"VIGIL_CLICKHOUSE_ADDR": secure, "VIGIL_CLICKHOUSE_USERNAME": "vigil", "VIGIL_CLICKHOUSE_PASSWORD": pw,
			"VIGIL_CLICKHOUSE_DATABASE": "vigil_tls", "VIGIL_CLICKHOUSE_TLS_ENABLED": "true", "VIGIL_CLICKHOUSE_TLS_CA_FILE": ca,
		}
	}
	f := func(name string, e map[string]string, wantErr string) {
		t.Helper()
		out, errOut, err := run(t, e, "migrate")
		all := out + errOut
		if err != nil {
			all += err.Error()
		}
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: migrate: %v\n%s", name, err, all)
		case wantErr != "" && (err == nil || !strings.Contains(strings.ToLower(err.Error()), wantErr)):
			t.Errorf("%s: migrate: %v, want an error saying %q\n%s", name, err, wantErr, all)
		}
		if err != nil {
			t.Logf("%s: %v", name, err)
		}
		noSecrets(t, name, all, password)
	}
	f("wrong password", env("not-"+password, certs.CAFile), "password")
	f("server's CA not trusted", env(password, ""), "certificate")
	f("right password over TLS", env(password, certs.CAFile), "")
	out, _, err := run(t, env(password, certs.CAFile), "migrate", "--status")
	if err != nil || !strings.Contains(out, "0 pending") {
		t.Errorf("migrate --status over TLS: %v, output lacks \"0 pending\":\n%s", err, out)
	}
}
