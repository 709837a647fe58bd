package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"smartfhir/internal/smart"
	"smartfhir/internal/store/sqlstore"
)

// authFlags are the flags of every command that administers the
// authorization server: the database and the public base URL (for launch
// URLs).
type authFlags struct {
	db      dbFlags
	baseURL string
}

func (f *authFlags) register(fs *flag.FlagSet) {
	f.db.register(fs)
	fs.StringVar(&f.baseURL, "base-url", "http://localhost:8080", "public base URL of the server")
}

// open opens (and migrates) the database and the authorization server on it.
func (f *authFlags) open(ctx context.Context, stderr io.Writer) (*sqlstore.DB, *smart.Server, error) {
	db, err := f.db.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	srv, err := newAuthServer(db, strings.TrimSuffix(f.baseURL, "/"), slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, srv, nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// splitArgs parses flags that may come before or after one positional
// argument (clients approve ID --db X, or --db X approve ID).
func splitArgs(fs *flag.FlagSet, args []string) (string, error) {
	var pos string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, pos == ""); err != nil {
		return "", err
	}
	if pos == "" {
		if fs.NArg() != 1 {
			return "", errors.New("want exactly one argument")
		}
		pos = fs.Arg(0)
	}
	return pos, nil
}

func runClients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: smartfhir clients add|list|show|approve|deny|disable …")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("clients "+sub, stderr)
	var af authFlags
	af.register(fs)
	switch sub {
	case "add":
		return clientsAdd(ctx, fs, &af, args, stdout, stderr)
	case "list":
		asJSON := fs.Bool("json", false, "print JSON")
		if err := parseFlags(fs, args, false); err != nil {
			return err
		}
		db, _, err := af.open(ctx, stderr)
		if err != nil {
			return err
		}
		defer db.Close()
		list, err := db.Auth().Clients(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]map[string]any, 0, len(list))
			for _, c := range list {
				out = append(out, clientJSON(c))
			}
			return writeJSONOut(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tNAME\tTYPE\tSTATUS")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Name, c.Type, c.Status)
		}
		return tw.Flush()
	case "show":
		id, err := splitArgs(fs, args)
		if err != nil {
			return err
		}
		db, _, err := af.open(ctx, stderr)
		if err != nil {
			return err
		}
		defer db.Close()
		c, err := db.Auth().Client(ctx, id)
		if err != nil {
			return fmt.Errorf("client %q: %w", id, err)
		}
		return writeJSONOut(stdout, clientJSON(c))
	case "approve", "deny", "disable":
		id, err := splitArgs(fs, args)
		if err != nil {
			return err
		}
		db, srv, err := af.open(ctx, stderr)
		if err != nil {
			return err
		}
		defer db.Close()
		st := map[string]smart.ClientStatus{"approve": smart.Approved, "deny": smart.Denied, "disable": smart.Disabled}[sub]
		if err := srv.SetClientStatus(ctx, id, st); err != nil {
			return fmt.Errorf("client %q: %w", id, err)
		}
		fmt.Fprintf(stdout, "client %s is %s\n", id, st)
		return nil
	default:
		return fmt.Errorf("unknown clients subcommand %q: want add, list, show, approve, deny or disable", sub)
	}
}

func clientsAdd(ctx context.Context, fs *flag.FlagSet, af *authFlags, args []string, stdout, stderr io.Writer) error {
	var spec smart.ClientSpec
	var typ, jwksFile string
	var redirects multiFlag
	fs.StringVar(&spec.Name, "name", "", "the app's name, shown to users")
	fs.StringVar(&typ, "type", "", "public, confidential-symmetric or confidential-asymmetric")
	fs.Var(&redirects, "redirect-uri", "a registered redirect URI (repeatable)")
	fs.StringVar(&spec.Scopes, "scopes", "", "space-separated scopes the client may be granted")
	fs.StringVar(&spec.JWKSURL, "jwks-url", "", "URL of the client's JWKS (asymmetric clients)")
	fs.StringVar(&jwksFile, "jwks-file", "", "file holding the client's JWKS (asymmetric clients)")
	fs.StringVar(&spec.LaunchURL, "launch-url", "", "the app's EHR launch URL")
	fs.BoolVar(&spec.Approve, "approve", false, "approve the client at once")
	asJSON := fs.Bool("json", false, `print {"client_id": …, "client_secret": …}`)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	spec.Type, spec.RedirectURIs = smart.ClientType(typ), redirects
	if jwksFile != "" {
		b, err := os.ReadFile(jwksFile)
		if err != nil {
			return fmt.Errorf("--jwks-file: %w", err)
		}
		spec.JWKS = b
	}
	db, srv, err := af.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	id, secret, err := srv.RegisterClient(ctx, spec)
	if err != nil {
		return err
	}
	if *asJSON {
		out := map[string]string{"client_id": id}
		if secret != "" {
			out["client_secret"] = secret
		}
		return writeJSONOut(stdout, out)
	}
	fmt.Fprintf(stdout, "client_id: %s\n", id)
	if secret != "" {
		fmt.Fprintf(stdout, "client_secret: %s\n(shown once: only its hash is stored)\n", secret)
	}
	return nil
}

func clientJSON(c *smart.Client) map[string]any {
	out := map[string]any{"client_id": c.ID, "name": c.Name, "type": c.Type, "status": c.Status,
		"redirect_uris": c.RedirectURIs, "scopes": c.Scopes, "created": c.Created.Format("2006-01-02T15:04:05Z")}
	if c.RedirectURIs == nil {
		out["redirect_uris"] = []string{}
	}
	if c.LaunchURL != "" {
		out["launch_url"] = c.LaunchURL
	}
	if c.JWKSURL != "" {
		out["jwks_url"] = c.JWKSURL
	}
	if len(c.JWKS) > 0 {
		out["jwks"] = json.RawMessage(c.JWKS)
	}
	return out
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
