package main

import (
	"context"
	"fmt"
	"io"
)

// runLaunch prepares an EHR launch (SMART App Launch 2.2 §"EHR Launch") for
// one user of one client and prints the URL that starts the app.
func runLaunch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("launch", stderr)
	var af authFlags
	af.register(fs)
	clientID := fs.String("client", "", "the client id of the app to launch")
	username := fs.String("user", "", "the user who will log in")
	patient := fs.String("patient", "", "the Patient id in context")
	encounter := fs.String("encounter", "", "the Encounter id in context (optional)")
	asJSON := fs.Bool("json", false, `print {"launch_url": …, "launch": …}`)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *clientID == "" || *username == "" || *patient == "" {
		return fmt.Errorf("--client, --user and --patient are required")
	}
	db, srv, err := af.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	launchURL, launch, err := srv.NewLaunch(ctx, *clientID, *username, *patient, *encounter)
	if err != nil {
		return err
	}
	if launchURL == "" {
		fmt.Fprintf(stderr, "client %s has no launch URL; pass launch=%s to its launch page yourself\n", *clientID, launch)
	}
	if *asJSON {
		return writeJSONOut(stdout, map[string]string{"launch_url": launchURL, "launch": launch})
	}
	if launchURL != "" {
		fmt.Fprintln(stdout, launchURL)
	} else {
		fmt.Fprintln(stdout, launch)
	}
	return nil
}
