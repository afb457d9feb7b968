package ports

import (
	"net"
	"os"
	"testing"
)

// TestListenedBy tells this process's listener from a port nobody holds.
func TestListenedBy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	mine, known := ListenedBy(os.Getpid(), port)
	if !known {
		t.Skip("no /proc/net/tcp here")
	}
	if !mine {
		t.Errorf("ListenedBy(self, %d) = false, want true", port)
	}
	free, err := Free(1)
	if err != nil {
		t.Fatal(err)
	}
	if mine, _ := ListenedBy(os.Getpid(), free[0]); mine {
		t.Errorf("ListenedBy(self, %d) = true for a port nobody listens on", free[0])
	}
	if mine, _ := ListenedBy(1, port); mine {
		t.Errorf("ListenedBy(pid 1, %d) = true for this process's port", port)
	}
}
