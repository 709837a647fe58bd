package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// command is one subcommand of the binary.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"serve":   {"run the FHIR server", runServe},
	"migrate": {"apply database schema migrations and exit", runMigrate},
	"version": {"print the version", runVersion},
	"import":  {"load Bundles and NDJSON files or folders into the database", runImport},
	"clients": {"register and administer SMART apps (add|list|show|approve|deny|disable)", runClients},
	"users":   {"add and list logins (add|list)", runUsers},
	"launch":  {"prepare an EHR launch and print its URL", runLaunch},
	"keys":    {"rotate the id_token signing key (rotate)", runKeys},
	"optout":  {"record, withdraw and list patients' opt-outs of third-party app access (add|remove|list)", runOptOut},
}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "smartfhir:", err)
		}
		os.Exit(2)
	}
}

// run dispatches to a subcommand. Errors are returned, never printed, so
// tests can check them; main prints them and exits non-zero.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return flag.ErrHelp
	}
	cmd, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: smartfhir <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'smartfhir <command> -h' for the flags of a command.")
}

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("version takes no arguments")
	}
	fmt.Fprintln(stdout, "smartfhir", version)
	return nil
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("smartfhir "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, after first applying SMARTFHIR_<FLAG> environment
// variables for every flag not given on the command line. Positional
// arguments are refused unless allowArgs.
func parseFlags(fs *flag.FlagSet, args []string, allowArgs bool) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !allowArgs && fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("invalid value %q for %s: %v", v, env, e)
			}
		}
	})
	return err
}

// envName is the environment variable of a flag: SMARTFHIR_BASE_URL for --base-url.
func envName(flagName string) string {
	return "SMARTFHIR_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
