package alerts

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/vigilhq/vigil/internal/secretfile"
)

// Client posts alerts to Alertmanagers' API v2 (POST /api/v2/alerts). It
// is safe for concurrent use.
type Client struct {
	http     *http.Client
	user     string
	password string
	token    string
}

// NewClient reads the credentials of c (password_file, token_file) and
// builds an HTTP client with its TLS and timeout; errors name the key.
func NewClient(c Config) (*Client, error) {
	cl := &Client{user: c.Username}
	var err error
	if cl.password, err = secretfile.Read("alerts.password_file", c.PasswordFile); err != nil {
		return nil, err
	}
	if cl.token, err = secretfile.Read("alerts.token_file", c.TokenFile); err != nil {
		return nil, err
	}
	tc, err := c.TLS.Build("alerts.tls")
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	cl.http = &http.Client{Transport: tr, Timeout: c.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return cl, nil
}

// Post sends alerts to the Alertmanager at base (e.g. https://am:9093);
// any answer but 200 is an error quoting the start of its body.
func (c *Client) Post(ctx context.Context, base string, alerts []Alert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return fmt.Errorf("alerts: encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.user != "":
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("alerts: post to %s: %w", base, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		text := strings.Join(strings.Fields(string(msg)), " ")
		basic := ""
		if c.user != "" {
			basic = base64.StdEncoding.EncodeToString([]byte(c.user + ":" + c.password))
		}
		for _, s := range []string{c.token, c.password, basic} {
			if s != "" {
				text = strings.ReplaceAll(text, s, "<redacted>")
			}
		}
		return fmt.Errorf("alerts: post to %s: HTTP %d: %s", base, resp.StatusCode, text)
	}
	return nil
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
