package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/membroker"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/sqlite"
)

// exampleServer runs a real server on 127.0.0.1 for the examples (they
// have no *testing.T for servertest) and returns its URL, a token maker
// and a stop func.
func exampleServer() (string, func(id string) string, func()) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "parley-example")
	if err != nil {
		log.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
	if err != nil {
		log.Fatal(err)
	}
	secret, _ := auth.NewSecret()
	br := membroker.New()
	srv, err := server.New(server.Config{Store: st, Broker: br, Secret: secret, Limits: server.Unlimited(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Static: http.NotFoundHandler()})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	token := func(id string) string {
		st.EnsureUser(ctx, id, id)
		tok, _, _ := auth.Mint(secret, id, id, time.Hour)
		return tok
	}
	stop := func() {
		srv.Shutdown(ctx)
		<-done
		st.Close()
		br.Close()
		os.RemoveAll(dir)
	}
	return "http://" + ln.Addr().String(), token, stop
}

// statusPrinter shows the connection status the way a UI would.
type statusPrinter struct{ client.NopListener }

func (statusPrinter) OnConnected(client.StatusChange) { fmt.Println("status: connected") }
func (statusPrinter) OnReconnecting(ch client.StatusChange) {
	fmt.Printf("status: reconnecting (attempt %d)\n", ch.Attempt)
}

// Connect, watch the status, send a message and see it stored.
func Example() {
	url, token, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, client.WithToken(token("alice")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.AddConnectionListener("ui", statusPrinter{})
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	cv, err := c.CreateGroup(ctx, "Team", nil)
	if err != nil {
		log.Fatal(err)
	}
	m, err := c.Send(ctx, cv.ID, "hello") // returns at once, status Sending
	if err != nil {
		log.Fatal(err)
	}
	stored, err := m.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Status(), stored.Seq, stored.Text)
	// Output:
	// status: connected
	// sent 1 hello
}

// Page through history with a ConversationView: the newest page first,
// then older pages with LoadMore while live messages keep arriving.
func ExampleConversationView_LoadMore() {
	url, token, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, client.WithToken(token("alice")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	cv, _ := c.CreateGroup(ctx, "Team", nil)
	var last *client.Message
	for i := 1; i <= 25; i++ {
		last, _ = c.Send(ctx, cv.ID, fmt.Sprintf("message %d", i))
	}
	last.Wait(ctx)

	v, err := c.OpenConversation(ctx, cv.ID, 10)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	fmt.Println(len(v.Messages()), v.HasMore())
	for v.HasMore() {
		if _, err := v.LoadMore(ctx); err != nil {
			log.Fatal(err)
		}
		fmt.Println(len(v.Messages()), v.HasMore())
	}
	// A live message joins the view without a gap or a duplicate.
	m, _ := c.Send(ctx, cv.ID, "live")
	m.Wait(ctx)
	for len(v.Messages()) < 26 {
		time.Sleep(time.Millisecond)
	}
	msgs := v.Messages()
	fmt.Println(msgs[0].Seq, msgs[len(msgs)-1].Seq, msgs[len(msgs)-1].Text)
	// Output:
	// 10 true
	// 20 true
	// 25 false
	// 1 26 live
}
