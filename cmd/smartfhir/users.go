package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"smartfhir/internal/smart"
)

func runUsers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: smartfhir users add|list …")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("users "+sub, stderr)
	var af authFlags
	af.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	switch sub {
	case "add":
		var spec smart.UserSpec
		var role, patients string
		fs.StringVar(&spec.Username, "username", "", "the login name")
		fs.StringVar(&spec.Password, "password", "", "the password (at least 8 characters)")
		fs.StringVar(&role, "role", "", "patient, practitioner, related-person or admin")
		fs.StringVar(&spec.FHIRUser, "fhir-user", "", "the user's FHIR resource, e.g. Patient/85")
		fs.StringVar(&patients, "patients", "", "comma-separated Patient ids a related person acts for, or a practitioner's panel")
		if err := parseFlags(fs, args, false); err != nil {
			return err
		}
		spec.Role = smart.Role(role)
		for p := range strings.SplitSeq(patients, ",") {
			if p = strings.TrimSpace(p); p != "" {
				spec.Patients = append(spec.Patients, p)
			}
		}
		db, srv, err := af.open(ctx, stderr)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := srv.AddUser(ctx, spec); err != nil {
			if errors.Is(err, smart.ErrExists) {
				return fmt.Errorf("user %q already exists", spec.Username)
			}
			return err
		}
		if *asJSON {
			return writeJSONOut(stdout, userJSON(&smart.User{Username: spec.Username, Role: spec.Role, FHIRUser: spec.FHIRUser, Patients: spec.Patients}))
		}
		fmt.Fprintf(stdout, "user %s added\n", spec.Username)
		return nil
	case "list":
		if err := parseFlags(fs, args, false); err != nil {
			return err
		}
		db, _, err := af.open(ctx, stderr)
		if err != nil {
			return err
		}
		defer db.Close()
		list, err := db.Auth().Users(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]map[string]any, 0, len(list))
			for _, u := range list {
				out = append(out, userJSON(u))
			}
			return writeJSONOut(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tROLE\tFHIR USER\tPATIENTS")
		for _, u := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Username, u.Role, u.FHIRUser, strings.Join(u.Patients, ","))
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown users subcommand %q: want add or list", sub)
	}
}

func userJSON(u *smart.User) map[string]any {
	patients := u.Patients
	if patients == nil {
		patients = []string{}
	}
	return map[string]any{"username": u.Username, "role": u.Role, "fhir_user": u.FHIRUser, "patients": patients}
}
