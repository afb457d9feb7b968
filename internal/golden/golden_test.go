package golden

import "testing"

func TestDiff(t *testing.T) {
	f := func(got, want, diff string) {
		t.Helper()
		if d := Diff([]byte(got), []byte(want)); d != diff {
			t.Errorf("Diff(%q, %q) = %q, want %q", got, want, d, diff)
		}
	}
	f("a\nb\n", "a\nb\n", "")
	f("a\nc\n", "a\nb\n", `line 2: got "c", want "b"`)
	f("a\n", "a\nb\n", `line 2: got "", want "b"`)
	f("a\nb", "a", `line 2: got "b", want the end`)
	f("a", "a\nb", `line 2: got the end, want "b"`)
}

// TestCheck writes a file with -update (directories included), and then
// the same bytes compare equal.
func TestCheck(t *testing.T) {
	defer func(u bool) { *update = u }(*update)
	path := t.TempDir() + "/x/golden.txt"
	*update = true
	Check(t, path, []byte("one\n"))
	*update = false
	Check(t, path, []byte("one\n"))
}
