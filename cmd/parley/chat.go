package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/tui"
)

// chatCmd is the terminal client.
type chatCmd struct {
	URL      string `default:"http://127.0.0.1:8080" env:"PARLEY_URL" help:"Server URL."`
	Token    string `env:"PARLEY_TOKEN" help:"Token to connect with (from 'parley token mint' or a login)."`
	Username string `env:"PARLEY_USERNAME" help:"Log in with this username instead of a token; the password comes from PARLEY_PASSWORD or a line on stdin."`
	Password string `env:"PARLEY_PASSWORD" help:"Password for --username (prefer the environment variable: flags show in ps)."`
	LogFile  string `help:"Append the client's log to this file (default: no log, the screen is the UI)."`
	Outbox   string `env:"PARLEY_OUTBOX" help:"Keep unsent messages in this file, so they are sent after a restart (default: a file per server and user in $XDG_STATE_HOME/parley, or ~/.local/state/parley; 'memory' keeps them in memory only, lost on quit). One parley chat at a time may use a file: a second one on the same file refuses to start."`
}

func (c *chatCmd) Run(ctx context.Context, s *streams) error {
	base, err := tui.BaseURL(c.URL)
	if err != nil {
		return err
	}
	var opts []client.Option
	token := func(ctx context.Context) (string, error) { return c.Token, nil }
	userID := tokenSubject(c.Token)
	switch {
	case c.Username != "":
		pw := c.Password
		if pw == "" {
			fmt.Fprintf(s.err, "password for %s: ", c.Username)
			line, err := bufio.NewReader(s.in).ReadString('\n')
			if err != nil && line == "" {
				return fmt.Errorf("reading the password from stdin: %w (or set PARLEY_PASSWORD)", err)
			}
			pw = strings.TrimRight(line, "\r\n")
		}
		sess, err := tui.Login(ctx, base, c.Username, pw)
		if err != nil {
			// The server's own message ("wrong username or password",
			// an account locked for a while), else what went wrong on
			// the way: a server that cannot be reached is said so
			// (parley.ErrorMessage called it "internal error").
			msg := parley.ErrorMessage(err)
			if pe := (*parley.Error)(nil); !errors.As(err, &pe) {
				msg = tui.ErrorText(err)
			}
			return fmt.Errorf("logging in as %s: %s", c.Username, msg)
		}
		token = tui.NewPasswordLogin(base, c.Username, pw, sess).Token
		userID = sess.User.ID
	case c.Token == "":
		return errors.New("give --token (or PARLEY_TOKEN), or --username with PARLEY_PASSWORD")
	}
	opts = append(opts, client.WithTokenSource(token))

	// The screen is the UI: the SDK's log goes to a file or nowhere.
	var logw io.Writer = io.Discard
	if c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
	}
	opts = append(opts, client.WithLogger(slog.New(slog.NewTextHandler(logw, nil))))

	// The outbox lives on disk unless asked otherwise: a message typed
	// offline must not be lost by quitting.
	durable, outboxPath := false, ""
	switch outbox := c.Outbox; {
	case outbox == "memory":
	case outbox != "":
		outboxPath = outbox
	case userID == "":
		fmt.Fprintln(s.err, "parley chat: the token names no user; the outbox is in memory only (give --outbox to keep it)")
	default:
		path, err := tui.OutboxFile(base, userID)
		if err != nil {
			return err
		}
		outboxPath = path
	}
	if outboxPath != "" {
		opts, durable = append(opts, client.WithOutboxFile(outboxPath)), true
		if userID != "" {
			// Messages typed before the first welcome are recorded as
			// this user's: another user's parley chat on the same
			// --outbox file leaves them for this one.
			opts = append(opts, client.WithOutboxUser(userID))
		}
	}

	cl, err := client.New(base, opts...)
	if errors.Is(err, client.ErrOutboxInUse) {
		// Refused rather than given an outbox of its own: what that one
		// kept would never be sent by the next parley chat, which opens
		// the usual file. The user picks: quit the other, or say where
		// this one's unsent messages go.
		return fmt.Errorf("another parley chat (or another program) is using the outbox file %s: quit it first, "+
			"or start this one with --outbox memory (unsent messages are lost on quit) or --outbox ANOTHER-FILE", outboxPath)
	}
	if err != nil {
		return err
	}
	lookup := func(ctx context.Context, name string) (parley.User, error) {
		tok, err := token(ctx)
		if err != nil {
			return parley.User{}, err
		}
		return tui.LookupUser(ctx, base, tok, name)
	}
	return tui.Run(ctx, cl, tui.Config{LookupUser: lookup, DurableOutbox: durable})
}

// tokenSubject is the user id a token names (its "sub" claim), read
// without checking the signature: it only names the outbox file; the
// server checks the token. "" when the token is not a JWT with a subject.
func tokenSubject(token string) string {
	if token == "" {
		return ""
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return ""
	}
	sub, _ := claims.GetSubject()
	return sub
}
