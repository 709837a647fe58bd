package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// runKeys administers the id_token signing keys: "keys rotate" retires the
// current key (it stays published until the id_tokens it signed expire)
// and makes a new one.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return errors.New("usage: smartfhir keys rotate [--db …] [--data-dir …]")
	}
	fs := newFlagSet("keys rotate", stderr)
	var af authFlags
	af.register(fs)
	if err := parseFlags(fs, args[1:], false); err != nil {
		return err
	}
	db, srv, err := af.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	kid, err := srv.RotateKeys(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new signing key %s; running servers switch to it within a minute\n", kid)
	return nil
}
