// Package secretfile reads one-line secrets (passwords, tokens, keys) from
// files, so that configs name files and never hold secrets.
package secretfile

import (
	"fmt"
	"os"
	"strings"
)

// Read returns the secret in path (trailing newline trimmed), or "" when
// path is "". An unreadable or empty file is an error naming key, never
// quoting the content.
func Read(key, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", key, path)
	}
	return s, nil
}
