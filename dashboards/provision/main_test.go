package provision_test

import (
	"os"
	"testing"

	"github.com/vigilhq/vigil/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
