package web_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parleychat/parley/protocol"
	"github.com/parleychat/parley/web"
)

// TestSDKTables checks, in the real browser, that parley.js uses the same
// close-code table as protocol.ShouldReconnect and the backoff schedule of
// the Go SDK (1 s doubling, capped at 30 s, full jitter).
func TestSDKTables(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	t.Cleanup(srv.Close)
	tab := newTab(t, newBrowser(t), srv.URL)

	codes := []int{1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012,
		4000, 4001, 4002, 4003, 4099, 4100, 4101, 4102, 4150, 4199, 4200}
	list := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(codes)), ","), "[]")
	got := eval[[]bool](t, tab, `import('/parley.js').then(m => [`+list+`].map(c => m.shouldReconnect(c)))`)
	if len(got) != len(codes) {
		t.Fatalf("got %d answers for %d codes", len(got), len(codes))
	}
	for i, code := range codes {
		if want := protocol.ShouldReconnect(code); got[i] != want {
			t.Errorf("shouldReconnect(%d) = %v in parley.js, protocol.ShouldReconnect = %v", code, got[i], want)
		}
	}

	// With the random source at its top, the delay is the ceiling.
	ceilings := eval[[]int](t, tab, `import('/parley.js').then(m => [1,2,3,4,5,6,7,8,40].map(a => m.backoffDelay(a, () => 0.9999999)))`)
	want := []int{999, 1999, 3999, 7999, 15999, 29999, 29999, 29999, 29999}
	if fmt.Sprint(ceilings) != fmt.Sprint(want) {
		t.Errorf("backoff ceilings = %v, want %v", ceilings, want)
	}
	floors := eval[[]int](t, tab, `import('/parley.js').then(m => [1,5,9].map(a => m.backoffDelay(a, () => 0)))`)
	if fmt.Sprint(floors) != "[0 0 0]" {
		t.Errorf("full jitter floor = %v, want [0 0 0]", floors)
	}
}
