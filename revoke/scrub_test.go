package revoke_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/revoke"
)

func TestScrub(t *testing.T) {
	const s = "sup3r-secret-value"
	tests := []struct {
		name, in, secret, want string
	}{
		{"no secret", "no secret here", s, "no secret here"},
		{"verbatim", "body: " + s + " end", s, "body: [redacted] end"},
		{"every occurrence", s + "/" + s, s, "[redacted]/[redacted]"},
		{"query-escaped", "form: client_secret=" + url.QueryEscape("a+b/c") + "&x", "a+b/c", "form: client_secret=[redacted]&x"},
		{"path-escaped", "GET /x/" + url.PathEscape("a b/c") + "/y", "a b/c", "GET /x/[redacted]/y"},
		{"JSON-escaped", `{"got":"a\"b\\c"}`, `a"b\c`, `{"got":"[redacted]"}`},
		{"JSON-escaped twice", `{"got":"{\"secret\":\"a\\\"b\\\\c\"}"}`, `a"b\c`, `{"got":"{\"secret\":\"[redacted]\"}"}`},
		{"JSON with HTML escaping", `{"got":"x\u003cy\u003e\u0026z"}`, "x<y>&z", `{"got":"[redacted]"}`},
		{"JSON without HTML escaping", `{"got":"x<y>&z\"q"}`, `x<y>&z"q`, `{"got":"[redacted]"}`},
		{"unlisted encoding keeps no long run", "echo: abcdefgh&#33;ijklmnop", "abcdefgh!ijklmnop", "echo: [redacted]&#33;[redacted]"},
		{"runs shorter than 8 stay", "echo: abc&#33;defghijkl", "abc!defghijkl", "echo: abc&#33;[redacted]"},
		{"cut by an excerpt", "cut: " + s[:9] + "…", s, "cut: [redacted]…"},
		{"cut after 4 bytes", "cut: " + s[:4] + "…", s, "cut: [redacted]…"},
		{"short tail stays", "short tail sup…", s, "short tail sup…"},
		{"cut only at the end", "mid " + s[:9] + "… more", s, "mid " + s[:9] + "… more"},
		{"empty secret", "nothing to do", "", "nothing to do"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := revoke.Scrub(tc.in, tc.secret); got != tc.want {
				t.Errorf("Scrub(%q, %q) = %q, want %q", tc.in, tc.secret, got, tc.want)
			}
			if got := revoke.ScrubError(fmt.Errorf("%s", tc.in), tc.secret).Error(); got != tc.want {
				t.Errorf("ScrubError(%q, %q) = %q, want %q", tc.in, tc.secret, got, tc.want)
			}
		})
	}
}

func TestScrubSeveralSecrets(t *testing.T) {
	const tok, secret = "access-token-123", "client+secret/456"
	in := "Bearer " + tok + " form client_secret=" + url.QueryEscape(secret)
	got := revoke.Scrub(in, tok, "", secret)
	if got != "Bearer [redacted] form client_secret=[redacted]" {
		t.Fatalf("Scrub = %q", got)
	}
	if revoke.Scrub(in) != in {
		t.Fatal("Scrub without secrets changed the text")
	}
}

func TestScrubError(t *testing.T) {
	const s = "sup3r-secret-value"
	if revoke.ScrubError(nil, s) != nil {
		t.Fatal("ScrubError(nil) != nil")
	}
	sentinel := errors.New("refused")
	clean := fmt.Errorf("POST /token: %w", sentinel)
	if got := revoke.ScrubError(clean, s); got != clean || !errors.Is(got, sentinel) {
		t.Fatalf("ScrubError of an error without the secret = %v, want the error itself", got)
	}
	leaky := fmt.Errorf("POST /token: got %s: %w", s, sentinel)
	got := revoke.ScrubError(leaky, s)
	if got == nil || strings.Contains(got.Error(), s) || got.Error() != "POST /token: got [redacted]: refused" {
		t.Fatalf("ScrubError = %v", got)
	}
}
