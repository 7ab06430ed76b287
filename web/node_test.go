package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// nodeTools finds node and the test packages web/node needs (npm ci
// there), skipping the test when either is missing, as chromiumPath
// does, and failing instead under CI=true, where scripts/test installs
// them.
func nodeTools(t *testing.T) (node string) {
	t.Helper()
	miss := func(msg string) {
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		miss("node not found: install it (apt-get install -y nodejs npm) to test parley.js under Node")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "ws", "package.json")); err != nil {
		miss("web/node has no node_modules: run `npm ci --prefix web/node` (scripts/test does)")
	}
	return node
}

// TestNodeSDK runs parley.js's Node tests (web/node, node:test) against
// a real server, and type-checks a program written against parley.d.ts
// with tsc --strict.
func TestNodeSDK(t *testing.T) {
	node := nodeTools(t)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits = server.Unlimited()
		// One typing start per user, then a throttle that outlasts the
		// test: "typing:false still goes out while typing is throttled".
		c.Limits.TypingPerSecond, c.Limits.TypingBurst = 0.001, 1
	}))
	run := func(name string, args ...string) {
		t.Helper()
		// Generous: on a loaded 2-core machine (CI runs packages in
		// parallel) the 19 tests took 167 s; a limit is for a hang.
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, args...)
		cmd.Dir = "node"
		cmd.Env = append(os.Environ(), "PARLEY_URL="+srv.URL, "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		t.Logf("%s:\n%s", name, out)
	}
	run("node --test", "--test", "--test-reporter=spec")
	run("tsc", filepath.Join("node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json")
}
