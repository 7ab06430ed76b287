package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
)

// storeFlags name the store an admin command opens, as parley serve's.
type storeFlags struct {
	DataDir string `default:"./parley-data" env:"PARLEY_DATA_DIR" help:"Data directory of the SQLite store (when --store is empty)."`
	Store   string `env:"PARLEY_STORE" help:"Store, as parley serve --store: empty for SQLite in the data dir, sqlite:PATH, or a postgres:// URL."`
}

// withKeys runs fn on the API keys of the store f names, and closes the
// store.
func (f storeFlags) withKeys(ctx context.Context, fn func(parley.APIKeyStore) error) error {
	ks, closeStore, err := f.keys(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	return fn(ks)
}

func (f storeFlags) keys(ctx context.Context) (parley.APIKeyStore, func(), error) {
	st, err := openStore(ctx, f.Store, f.DataDir)
	if err != nil {
		return nil, nil, err
	}
	ks, ok := st.(parley.APIKeyStore)
	if !ok {
		st.Close()
		return nil, nil, fmt.Errorf("the store %T keeps no API keys", st)
	}
	return ks, func() { st.Close() }, nil
}

type apikeyCreateCmd struct {
	Name   string   `required:"" help:"What the key is for (shown by list)."`
	Scopes []string `required:"" sep:"," help:"Comma-separated scopes: users, tokens, conversations, messages, moderation (or all)."`
	storeFlags
}

func (c *apikeyCreateCmd) Run(ctx context.Context, s *streams) error {
	var scopes []string
	for _, sc := range c.Scopes {
		sc = strings.TrimSpace(sc)
		switch {
		case sc == "all":
			scopes = append(scopes, auth.Scopes...)
		case slices.Contains(auth.Scopes, sc):
			scopes = append(scopes, sc)
		default:
			return fmt.Errorf("--scopes: unknown scope %q (known: %s, all)", sc, strings.Join(auth.Scopes, ", "))
		}
	}
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	return c.withKeys(ctx, func(ks parley.APIKeyStore) error {
		id, key, err := auth.NewAPIKey()
		if err != nil {
			return err
		}
		if err := ks.CreateAPIKey(ctx, parley.APIKey{ID: id, Name: c.Name, Scopes: scopes, CreatedAt: parley.Now()}, auth.HashAPIKey(key)); err != nil {
			return err
		}
		fmt.Fprintf(s.err, "api key %s (%s) with scopes %s; keep it now, it is not shown again:\n", id, c.Name, strings.Join(scopes, ","))
		fmt.Fprintln(s.out, key)
		return nil
	})
}

type apikeyRevokeCmd struct {
	ID string `arg:"" help:"The key's id (the part after pk_, before the next _; or see list)."`
	storeFlags
}

func (c *apikeyRevokeCmd) Run(ctx context.Context, s *streams) error {
	return c.withKeys(ctx, func(ks parley.APIKeyStore) error {
		if err := ks.RevokeAPIKey(ctx, c.ID); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "revoked %s\n", c.ID)
		return nil
	})
}

type apikeyListCmd struct {
	storeFlags
}

func (c *apikeyListCmd) Run(ctx context.Context, s *streams) error {
	return c.withKeys(ctx, func(ks parley.APIKeyStore) error {
		list, err := ks.APIKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tREVOKED")
		for _, k := range list {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	})
}
