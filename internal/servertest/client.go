package servertest

import (
	"context"
	"testing"

	"github.com/parleychat/parley/client"
)

// Connect makes an SDK client for url with opts and connects it, failing
// the test on either error; the client is closed when the test ends.
func Connect(ctx context.Context, t testing.TB, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}
