package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// TestHostileUnstorableText: ids, names and cursors that hold a NUL
// character or bytes that are not UTF-8 (a path's %00 or %FF, a JSON
// "\u0000", a cursor's decoded bytes), on every route and op that reads
// them, answer 400 invalid on SQLite and on PostgreSQL alike. Before the
// stores' read guard (sqlstore.readGuard), PostgreSQL refused such a
// text itself (SQLSTATE 22021) and a client got 500 internal, with an
// error logged, from GET /v1/users/%00, GET /v1/conversations/%00, its
// messages, the conversations and mentions cursors, search's
// conversation_id, attachments and their links, typing, and the ops
// conversation, history, typing, create_direct (by username) and search.
func TestHostileUnstorableText(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			var opts []servertest.Option
			if engine == "postgres" {
				dsn := pgtest.Schema(t)
				opts = append(opts, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
					return postgres.Open(ctx, dsn)
				}))
			}
			srv := servertest.Start(t, opts...)
			tok := srv.Token(t, "alice", "Alice")
			a, conv := aliceToBob(t, srv)
			m := a.send(conv.ID, "c1", "hello @bob")
			for _, bad := range []string{"\x00", "a\x00b", "\xff", "\xc3"} {
				p, q := url.PathEscape(bad), url.QueryEscape(bad)
				cursor := func(prefix string) string { return base64.RawURLEncoding.EncodeToString([]byte(prefix + bad)) }
				for _, r := range [][3]string{
					{"GET", "/v1/users/" + p},
					{"GET", "/v1/conversations/" + p},
					{"GET", "/v1/conversations?cursor=1:" + q},
					{"GET", "/v1/conversations/" + p + "/messages"},
					{"GET", "/v1/search?q=hello&conversation_id=" + q},
					{"GET", "/v1/mentions?cursor=" + cursor("m1:")},
					{"POST", "/v1/attachments/" + p + "/link"},
					{"GET", "/v1/attachments/" + p},
					{"POST", "/v1/conversations/" + p + "/typing", `{"typing":true}`},
					{"POST", "/v1/conversations/" + p + "/read", `{"seq":1}`},
					{"POST", "/v1/conversations/" + p + "/messages", `{"client_id":"x","text":"x"}`},
					{"DELETE", "/v1/conversations/" + conv.ID + "/messages/" + p},
					{"PUT", "/v1/me/blocked/" + p},
				} {
					resp := httpDo(t, srv, r[0], r[1], tok, r[2])
					if resp.status != 400 || resp.err.Code != parley.EINVALID {
						t.Errorf("%s %s: %d %s, want 400 invalid", r[0], r[1], resp.status, resp.body)
					}
				}
				s, _ := json.Marshal(bad) // "\u0000", or "\ufffd" for the bytes that are not UTF-8
				for _, o := range []struct{ op, data string }{
					{protocol.OpConversation, `{"conversation_id":` + string(s) + `}`},
					{protocol.OpHistory, `{"conversation_id":` + string(s) + `}`},
					{protocol.OpTyping, `{"conversation_id":` + string(s) + `,"typing":true}`},
					{protocol.OpCreateDirect, `{"username":` + string(s) + `}`},
					{protocol.OpSearch, `{"query":"hello","conversation_id":` + string(s) + `}`},
					{protocol.OpReact, `{"conversation_id":"` + conv.ID + `","message_id":` + string(s) + `,"emoji":"👍"}`},
				} {
					f := a.call(o.op, json.RawMessage(o.data))
					if f.Type != protocol.TypeError || (f.Error.Code != parley.EINVALID && f.Error.Code != parley.ENOTFOUND) {
						t.Errorf("%s %s: %s %+v, want invalid (or not_found for U+FFFD)", o.op, o.data, f.Type, f.Error)
					}
				}
			}
			if got := a.history(conv.ID); len(got.Messages) != 1 || got.Messages[0].ID != m.ID {
				t.Fatalf("history after the attack: %+v", got.Messages)
			}
		})
	}
}

// namesCounting is a SQLite store that counts its UserByName lookups,
// each of which folds the name into its uniqueness key (parley.NameKey)
// first: PRECIS and the confusables skeleton, work that grows with the
// name (about 20 ms of CPU for 64 KiB).
type namesCounting struct {
	*sqlite.DB
	lookups atomic.Int64
}

func (s *namesCounting) UserByName(ctx context.Context, name string) (parley.User, error) {
	s.lookups.Add(1)
	return s.DB.UserByName(ctx, name)
}

// TestHostileLongNameLookup: a name longer than any user's can be (GET
// /v1/users/{name} with a path of 60 KB, create_direct with a username of
// as much) is not found without the lookup's work; a name of a real user
// in a form that finds it is still looked up. Before, each such request
// folded the whole name (about 20 ms of CPU), 20 a second per user on
// the reads limit.
func TestHostileLongNameLookup(t *testing.T) {
	ns := &namesCounting{}
	srv := servertest.Start(t, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
		db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
		ns.DB = db
		return ns, err
	}))
	if _, err := srv.Store.CreateUser(t.Context(), "bob", []byte("hash")); err != nil {
		t.Fatal(err)
	}
	tok := srv.Token(t, "mallory", "Mallory")
	m := connect(t, srv, tok, nil)
	long := strings.Repeat("ab", 30000) // 60 KB, a path under the header limit
	before := ns.lookups.Load()
	if r := httpDo(t, srv, "GET", "/v1/users/"+long, tok, ""); r.status != 404 {
		t.Fatalf("GET /v1/users/<60 KB>: %d, want 404", r.status)
	}
	if code := m.fail(protocol.OpCreateDirect, protocol.CreateDirect{Username: long}); code != parley.ENOTFOUND {
		t.Fatalf("create_direct with a username of 60 KB: %s, want not_found", code)
	}
	if n := ns.lookups.Load() - before; n != 0 {
		t.Fatalf("two names of 60 KB were looked up %d times, want 0", n)
	}
	if r := httpDo(t, srv, "GET", "/v1/users/"+url.PathEscape("ＢＯＢ"), tok, ""); r.status != 200 {
		t.Fatalf("GET /v1/users/ＢＯＢ: %d %s, want bob", r.status, r.body)
	}
}
