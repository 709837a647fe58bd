package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// USCoreOutputName is the file the generator writes for the US Core package.
const USCoreOutputName = "uscore.json.gz"

// usCoreTable is the US Core table package spec embeds.
type usCoreTable struct {
	SearchParams []searchParamOut `json:"searchParams"`
	Profiles     []profileOut     `json:"profiles"`
	Combinations []combinationOut `json:"combinations"`
}

// combinationOut is a search parameter combination of the US Core server
// CapabilityStatement (the extension capabilitystatement-search-parameter-
// combination on rest.resource): the parameters a search uses together.
type combinationOut struct {
	Type        string   `json:"type"`
	Required    []string `json:"required"`
	Optional    []string `json:"optional,omitempty"`
	Expectation string   `json:"expectation"` // SHALL, SHOULD or MAY
}

// usCoreServer is the file of the US Core server CapabilityStatement in the
// package.
const usCoreServer = "CapabilityStatement-us-core-server.json"

const (
	combinationURL = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"
	expectationURL = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation"
)

// capabilityStatement is the part of a CapabilityStatement the generator
// reads: each resource's search parameter combinations.
type capabilityStatement struct {
	Rest []struct {
		Resource []struct {
			Type      string  `json:"type"`
			Extension []csExt `json:"extension"`
		} `json:"resource"`
	} `json:"rest"`
}

type csExt struct {
	URL         string  `json:"url"`
	ValueString string  `json:"valueString"`
	ValueCode   string  `json:"valueCode"`
	Extension   []csExt `json:"extension"`
}

// combinations returns the search parameter combinations of a
// CapabilityStatement, in its order.
func combinations(cs capabilityStatement) []combinationOut {
	var out []combinationOut
	for _, rest := range cs.Rest {
		for _, r := range rest.Resource {
			for _, e := range r.Extension {
				if e.URL != combinationURL {
					continue
				}
				c := combinationOut{Type: r.Type}
				for _, x := range e.Extension {
					switch x.URL {
					case "required":
						c.Required = append(c.Required, x.ValueString)
					case "optional":
						c.Optional = append(c.Optional, x.ValueString)
					case expectationURL:
						c.Expectation = x.ValueCode
					}
				}
				out = append(out, c)
			}
		}
	}
	return out
}

type profileOut struct {
	URL  string `json:"url"`
	Type string `json:"type"`
}

// generateUSCore reads the US Core package at pkgPath and writes
// USCoreOutputName into outDir.
func generateUSCore(pkgPath, outDir string) error {
	data, err := buildUSCore(pkgPath)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, USCoreOutputName), data, 0o644)
}

// buildUSCore returns the gzipped US Core table: every SearchParameter and
// every resource profile (StructureDefinition of kind resource and
// derivation constraint; extensions and data type profiles are not
// supportedProfile material), and the search parameter combinations of
// the server CapabilityStatement.
func buildUSCore(pkgPath string) ([]byte, error) {
	f, err := os.Open(pkgPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkgPath, err)
	}
	var params []searchParameter
	t := &usCoreTable{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pkgPath, err)
		}
		name := strings.TrimPrefix(h.Name, "package/")
		if h.Typeflag != tar.TypeReg || strings.Contains(name, "/") || !strings.HasSuffix(name, ".json") {
			continue
		}
		kind, _, _ := strings.Cut(name, "-")
		if kind != "SearchParameter" && kind != "StructureDefinition" && name != usCoreServer {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", pkgPath, name, err)
		}
		switch kind {
		case "SearchParameter":
			var sp searchParameter
			if err := json.Unmarshal(b, &sp); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", pkgPath, name, err)
			}
			params = append(params, sp)
		case "StructureDefinition":
			var sd structureDefinition
			if err := json.Unmarshal(b, &sd); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", pkgPath, name, err)
			}
			if sd.Kind == "resource" && sd.Derivation == "constraint" {
				t.Profiles = append(t.Profiles, profileOut{URL: sd.URL, Type: sd.Type})
			}
		case "CapabilityStatement":
			var cs capabilityStatement
			if err := json.Unmarshal(b, &cs); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", pkgPath, name, err)
			}
			t.Combinations = combinations(cs)
		}
	}
	t.SearchParams = compileSearchParams(params)
	sort.Slice(t.Profiles, func(i, j int) bool { return t.Profiles[i].URL < t.Profiles[j].URL })
	if len(t.SearchParams) == 0 || len(t.Profiles) == 0 || len(t.Combinations) == 0 {
		return nil, fmt.Errorf("%s: no search parameters, profiles or search parameter combinations: not a US Core package?", pkgPath)
	}
	return gzipJSON(t)
}
