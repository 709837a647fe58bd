// Command loadgen drives a running smartfhir server with a fixed number of
// concurrent connections and reports throughput and latency percentiles.
// It only ever talks to the base URL it is given (use a loopback address).
//
//	go run ./bench/loadgen -base http://127.0.0.1:8080/fhir -scenario read -c 32 -d 10s
//
// Scenarios: read (GET Patient/{id} of a seeded Patient), create (POST
// Patient), update (PUT the seeded Patients in turn), history (GET
// Patient/{id}/_history of a Patient with 10 versions), urls (GET each path
// of the -urls file in turn: searches on loaded data).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	base := flag.String("base", "http://127.0.0.1:8080/fhir", "FHIR base URL of the server under test")
	scenario := flag.String("scenario", "read", "read, create, update or history")
	conns := flag.Int("c", 32, "concurrent connections")
	dur := flag.Duration("d", 10*time.Second, "how long to run")
	seed := flag.Int("seed", 100, "Patients to create before the run")
	token := flag.String("token", "", "bearer token to send, if the server needs one")
	urls := flag.String("urls", "", "with -scenario urls: a file of paths relative to -base, one per line, requested in turn")
	flag.Parse()
	if *scenario == "urls" {
		*seed = 0
	}
	if err := run(*base, *scenario, *conns, *dur, *seed, *token, *urls); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// patient is a 3.7 KB US Core Patient, about the size of a real one.
func patient(i int) []byte {
	p := map[string]any{
		"resourceType": "Patient",
		"meta":         map[string]any{"profile": []string{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"}},
		"extension": []any{
			map[string]any{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": []any{
				map[string]any{"url": "ombCategory", "valueCoding": map[string]any{"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3", "display": "White"}},
				map[string]any{"url": "text", "valueString": "White"}}},
			map[string]any{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity", "extension": []any{
				map[string]any{"url": "ombCategory", "valueCoding": map[string]any{"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2186-5", "display": "Not Hispanic or Latino"}},
				map[string]any{"url": "text", "valueString": "Not Hispanic or Latino"}}},
			map[string]any{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "F"},
		},
		"identifier": []any{
			map[string]any{"system": "https://github.com/synthetichealth/synthea", "value": fmt.Sprintf("b6d8a3c2-%08d", i)},
			map[string]any{"type": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical Record Number"}}, "text": "Medical Record Number"},
				"system": "http://hospital.smarthealthit.org", "value": fmt.Sprintf("MRN-%08d", i)},
			map[string]any{"type": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS", "display": "Social Security Number"}}, "text": "Social Security Number"},
				"system": "http://hl7.org/fhir/sid/us-ssn", "value": fmt.Sprintf("999-%02d-%04d", i%100, i%10000)},
		},
		"active": true,
		"name": []any{
			map[string]any{"use": "official", "family": fmt.Sprintf("Family%d", i), "given": []string{"Anna", "Maria"}, "prefix": []string{"Mrs."}},
			map[string]any{"use": "maiden", "family": "Schmidt", "given": []string{"Anna"}},
		},
		"telecom": []any{
			map[string]any{"system": "phone", "value": "555-123-4567", "use": "home"},
			map[string]any{"system": "email", "value": "anna@example.org"},
		},
		"gender":    "female",
		"birthDate": "1974-12-25",
		"address": []any{map[string]any{"use": "home", "line": []string{"123 Main Street", "Apartment 4"}, "city": "Springfield",
			"state": "MA", "postalCode": "01101", "country": "US",
			"period": map[string]any{"start": "2010-03-01"}}},
		"maritalStatus": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M", "display": "Married"}}, "text": "Married"},
		"communication": []any{map[string]any{"language": map[string]any{"coding": []any{map[string]any{"system": "urn:ietf:bcp:47", "code": "en-US", "display": "English (United States)"}}, "text": "English"}, "preferred": true}},
		"text": map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">Anna Maria Family, female, born 1974-12-25. ` +
			string(bytes.Repeat([]byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit. "), 30)) + `</div>`},
	}
	b, _ := json.Marshal(p)
	return b
}

type client struct {
	http  *http.Client
	base  string
	token string
}

func (c *client) do(ctx context.Context, method, url string, body []byte) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Prefer", "return=minimal")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

func (c *client) create(ctx context.Context, i int) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", c.base+"/Patient", bytes.NewReader(patient(i)))
	req.Header.Set("Content-Type", "application/fhir+json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var p struct{ ID string }
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil || res.StatusCode != 201 {
		return "", fmt.Errorf("seeding: POST Patient = %d (%v)", res.StatusCode, err)
	}
	return p.ID, nil
}

func run(base, scenario string, conns int, dur time.Duration, seed int, token, urlFile string) error {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	c := &client{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: base, token: token}
	ctx := context.Background()
	ids := make([]string, seed)
	for i := range ids {
		id, err := c.create(ctx, i)
		if err != nil {
			return err
		}
		ids[i] = id
	}
	bodies := make([][]byte, len(ids))
	var op func(ctx context.Context, worker, n int) (int, error)
	switch scenario {
	case "read":
		op = func(ctx context.Context, w, n int) (int, error) {
			return c.do(ctx, "GET", base+"/Patient/"+ids[(w*7919+n)%len(ids)], nil)
		}
	case "create":
		body := patient(1)
		op = func(ctx context.Context, w, n int) (int, error) { return c.do(ctx, "POST", base+"/Patient", body) }
	case "update":
		for i, id := range ids {
			var m map[string]any
			json.Unmarshal(patient(i), &m)
			m["id"] = id
			bodies[i], _ = json.Marshal(m)
		}
		op = func(ctx context.Context, w, n int) (int, error) {
			i := (w + n*conns) % len(ids)
			return c.do(ctx, "PUT", base+"/Patient/"+ids[i], bodies[i])
		}
	case "urls":
		data, err := os.ReadFile(urlFile)
		if err != nil {
			return err
		}
		var paths []string
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				paths = append(paths, base+"/"+strings.TrimPrefix(l, "/"))
			}
		}
		if len(paths) == 0 {
			return fmt.Errorf("%s lists no paths", urlFile)
		}
		op = func(ctx context.Context, w, n int) (int, error) {
			return c.do(ctx, "GET", paths[(w*7919+n)%len(paths)], nil)
		}
	case "history":
		for i, id := range ids { // ten versions each
			var m map[string]any
			json.Unmarshal(patient(i), &m)
			m["id"] = id
			b, _ := json.Marshal(m)
			for range 9 {
				if st, err := c.do(ctx, "PUT", base+"/Patient/"+id, b); err != nil || st != 200 {
					return fmt.Errorf("seeding history: PUT = %d (%v)", st, err)
				}
			}
		}
		op = func(ctx context.Context, w, n int) (int, error) {
			return c.do(ctx, "GET", base+"/Patient/"+ids[(w*7919+n)%len(ids)]+"/_history", nil)
		}
	default:
		return fmt.Errorf("unknown scenario %q", scenario)
	}

	// Warm up the connections and caches, then measure.
	warm, cancelWarm := context.WithTimeout(ctx, time.Second)
	drive(warm, conns, op)
	cancelWarm()
	runCtx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	start := time.Now()
	lat, errs, bad := drive(runCtx, conns, op)
	elapsed := time.Since(start)
	if len(lat) == 0 {
		return errors.New("no request completed")
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
	fmt.Printf("%-8s c=%d  %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  n=%d  errors=%d  non-2xx=%d\n",
		scenario, conns, float64(len(lat))/elapsed.Seconds(),
		float64(pct(0.50).Microseconds())/1000, float64(pct(0.99).Microseconds())/1000, len(lat), errs, bad)
	return nil
}

// drive runs op on conns workers until ctx ends and returns the latencies of
// completed requests, the transport errors and the non-2xx answers.
func drive(ctx context.Context, conns int, op func(ctx context.Context, worker, n int) (int, error)) ([]time.Duration, int64, int64) {
	var mu sync.Mutex
	var all []time.Duration
	var errs, bad atomic.Int64
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			for n := 0; ctx.Err() == nil; n++ {
				t := time.Now()
				st, err := op(ctx, w, n)
				if ctx.Err() != nil {
					break
				}
				switch {
				case err != nil:
					errs.Add(1)
				case st < 200 || st > 299:
					bad.Add(1)
				default:
					lat = append(lat, time.Since(t))
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, errs.Load(), bad.Load()
}
