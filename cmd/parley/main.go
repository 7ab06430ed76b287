// Command parley is Parley's one binary: the server (serve), admin
// commands (token mint, user create) and the load tool (bench).
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
)

// CLI is the command line. Every serve flag also reads a PARLEY_*
// environment variable.
type CLI struct {
	Serve ServeCmd `cmd:"" help:"Run the server."`
	Token struct {
		Mint tokenMintCmd `cmd:"" help:"Print a token for a user, signed with the server's secret."`
	} `cmd:"" help:"Manage tokens."`
	User struct {
		Create userCreateCmd `cmd:"" help:"Create an account with a password."`
	} `cmd:"" help:"Manage accounts."`
	APIKey struct {
		Create apikeyCreateCmd `cmd:"" help:"Create a server API key and print it (only once: the store keeps its hash)."`
		Revoke apikeyRevokeCmd `cmd:"" help:"Revoke a server API key by its id."`
		List   apikeyListCmd   `cmd:"" help:"List the server API keys (ids, names, scopes; never the keys)."`
	} `cmd:"" name:"apikey" help:"Manage the server API's keys."`
	Bench benchCmd `cmd:"" help:"Run a load scenario against a server."`
	Chat  chatCmd  `cmd:"" help:"Chat in the terminal (log in with --token or --username)."`
}

// execSelf lets serve execute the binary again to set its timer slack
// (timerslack_linux.go): only main sets it, never a test calling run.
var execSelf bool

func main() {
	execSelf = true
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is how main prints a failed command's error: prefixed
// "parley: " once, though a *parley.Error's text already starts with it.
func errorLine(err error) string {
	return "parley: " + strings.TrimPrefix(err.Error(), "parley: ")
}

// run parses args and runs the command; ctx ends on SIGINT or SIGTERM.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cli CLI
	exit := -1
	p, err := kong.New(&cli,
		kong.Name("parley"),
		kong.Description("Real-time chat server that never loses, duplicates or reorders a message."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code }),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(&streams{in: stdin, out: stdout, err: stderr}),
	)
	if err != nil {
		return err
	}
	kctx, err := p.Parse(args)
	if exit >= 0 { // --help
		return nil
	}
	if err != nil {
		return err
	}
	return kctx.Run()
}

type streams struct {
	in       io.Reader
	out, err io.Writer
}

// secretFile is where the generated secret is kept in the data dir.
const secretFile = "secret"

// loadSecret returns the given secret, or the one kept in dataDir,
// generating it (mode 0600) on first use when create is set.
func loadSecret(given, dataDir string, create bool) ([]byte, error) {
	if given != "" {
		if len(given) < auth.MinSecretLen {
			return nil, fmt.Errorf("--secret must be at least %d bytes", auth.MinSecretLen)
		}
		return []byte(given), nil
	}
	path := filepath.Join(dataDir, secretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < auth.MinSecretLen {
			return nil, fmt.Errorf("%s holds a secret shorter than %d bytes", path, auth.MinSecretLen)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) || !create {
		return nil, fmt.Errorf("reading the secret: %w (start the server once, or pass --secret)", err)
	}
	raw, err := auth.NewSecret()
	if err != nil {
		return nil, err
	}
	s := hex.EncodeToString(raw)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

type tokenMintCmd struct {
	User    string        `required:"" help:"User: the id of a user, or the username of an existing account (its token then names that account), or a new id (the user is created on first use)."`
	Name    string        `help:"Display name (default: the existing user's name, or the user id)."`
	TTL     time.Duration `default:"24h" help:"How long the token lasts."`
	DataDir string        `default:"./parley-data" env:"PARLEY_DATA_DIR" help:"Data directory holding the secret (and the SQLite store)."`
	Secret  string        `env:"PARLEY_SECRET" help:"Token secret (default: the one in the data dir)."`
	Store   string        `env:"PARLEY_STORE" help:"Store to look the user up in, as parley serve --store (default: SQLite in the data dir, when it exists)."`
}

func (c *tokenMintCmd) Run(ctx context.Context, s *streams) error {
	secret, err := loadSecret(c.Secret, c.DataDir, false)
	if err != nil {
		return err
	}
	id, name, err := c.lookup(ctx)
	if err != nil {
		return err
	}
	if c.Name != "" {
		name = c.Name
	}
	tok, _, err := auth.Mint(secret, id, name, c.TTL)
	if err != nil {
		return err
	}
	fmt.Fprintln(s.out, tok)
	return nil
}

// lookup finds the user --user names in the store: by id, else by
// username (an account made by register or user create, whose id is not
// its name). A user not found, or no store (no SQLite file in the data
// dir and no --store), is a new integrator user: id --user, named --user.
func (c *tokenMintCmd) lookup(ctx context.Context) (id, name string, err error) {
	if c.Store == "" {
		if _, err := os.Stat(filepath.Join(c.DataDir, dbFile)); err != nil {
			return c.User, c.User, nil
		}
	}
	st, err := openStore(ctx, c.Store, c.DataDir)
	if err != nil {
		return "", "", err
	}
	defer st.Close()
	u, err := st.User(ctx, c.User)
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		u, err = st.UserByName(ctx, c.User)
	}
	switch {
	case parley.ErrorCode(err) == parley.ENOTFOUND:
		return c.User, c.User, nil
	case err != nil:
		return "", "", err
	}
	return u.ID, u.Name, nil
}

type userCreateCmd struct {
	Name     string `arg:"" help:"Username (normalised as registration does: PRECIS, unique by look-alike)."`
	Password string `env:"PARLEY_PASSWORD" help:"Password (default: read a line from stdin)."`
	DataDir  string `default:"./parley-data" env:"PARLEY_DATA_DIR" help:"Data directory of the SQLite store (when --store is empty)."`
	Store    string `env:"PARLEY_STORE" help:"Store, as parley serve --store: empty for SQLite in the data dir, sqlite:PATH, or a postgres:// URL."`
}

func (c *userCreateCmd) Run(ctx context.Context, s *streams) error {
	pw := c.Password
	if pw == "" {
		fmt.Fprint(s.err, "password: ")
		line, err := bufio.NewReader(s.in).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("reading the password: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	name, err := parley.NormalizeUsername(c.Name)
	if err != nil {
		return err
	}
	hash, err := auth.NewHasher(1).Hash(ctx, "", pw)
	if err != nil {
		return err
	}
	if c.Store == "" {
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return err
		}
	}
	st, err := openStore(ctx, c.Store, c.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.CreateUser(ctx, name, hash)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "created user %s (id %s)\n", u.Name, u.ID)
	return nil
}
