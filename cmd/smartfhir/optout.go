package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"smartfhir/internal/fhir"
	"smartfhir/internal/smart"
)

// runOptOut records, withdraws and lists patients' opt-outs of access by
// third-party apps: what the patient page will offer, for administrators
// and scripts.
func runOptOut(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: smartfhir optout add|remove [flags] PATIENT_ID, or smartfhir optout list [flags]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("optout "+sub, stderr)
	var af authFlags
	af.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	switch sub {
	case "add", "remove":
		patient, err := splitArgs(fs, args)
		if err != nil {
			return fmt.Errorf("%w (%s)", err, usage)
		}
		if !fhir.ValidID(patient) {
			return fmt.Errorf("%q is not a FHIR id (give the Patient id, e.g. 85)", patient)
		}
		db, srv, err := af.open(ctx, stderr)
		if err != nil {
			return err
		}
		defer db.Close()
		verb := "opted out of third-party access; their apps' grants are revoked"
		if sub == "add" {
			err = srv.OptOut(ctx, patient)
		} else {
			verb = "opted back in"
			if err = srv.OptIn(ctx, patient); errors.Is(err, smart.ErrNotFound) {
				return fmt.Errorf("patient %s has not opted out", patient)
			}
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSONOut(stdout, map[string]any{"patient": patient, "opted_out": sub == "add"})
		}
		fmt.Fprintf(stdout, "Patient/%s %s\n", patient, verb)
		return nil
	case "list":
		if err := parseFlags(fs, args, false); err != nil {
			return err
		}
		db, srv, err := af.open(ctx, stderr)
		if err != nil {
			return err
		}
		defer db.Close()
		list, err := srv.OptOuts(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]map[string]any, 0, len(list))
			for _, o := range list {
				out = append(out, map[string]any{"patient": o.PatientID, "since": fhir.FormatInstant(o.Created)})
			}
			return writeJSONOut(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATIENT\tSINCE")
		for _, o := range list {
			fmt.Fprintf(tw, "%s\t%s\n", o.PatientID, fhir.FormatInstant(o.Created))
		}
		return tw.Flush()
	}
	return fmt.Errorf("unknown optout subcommand %q: want add, remove or list", sub)
}
