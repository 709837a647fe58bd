package spec

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"io"
	"slices"
	"sync"
)

//go:embed uscore.json.gz
var usCoreGz []byte

// Profile is a resource profile of an implementation guide.
type Profile struct {
	URL  string // canonical URL
	Type string // the resource type it constrains
}

// Combination is a search parameter combination of a CapabilityStatement
// (the extension capabilitystatement-search-parameter-combination): the
// parameters of Type that a search uses together.
type Combination struct {
	Type        string
	Required    []string // the parameters the search always uses
	Optional    []string // those it may add
	Expectation string   // SHALL, SHOULD or MAY
}

type usCoreTables struct {
	searchParams []SearchParam
	profiles     []Profile
	combinations []Combination
}

var loadUSCore = sync.OnceValue(func() *usCoreTables {
	t, err := decodeUSCore(usCoreGz)
	if err != nil {
		// Compiled into the binary and checked by the tests.
		panic("spec: embedded US Core table: " + err.Error())
	}
	return t
})

// USCoreSearchParams returns the SearchParameters of US Core 6.1.0
// (hl7.org/fhir/us/core/STU6.1/search-parameters.html), sorted by first
// base type, then code, then URL.
func USCoreSearchParams() []SearchParam { return slices.Clone(loadUSCore().searchParams) }

// USCoreProfiles returns the resource profiles of US Core 6.1.0, sorted by
// URL (what a US Core server lists in CapabilityStatement supportedProfile).
func USCoreProfiles() []Profile { return slices.Clone(loadUSCore().profiles) }

// USCoreCombinations returns the search parameter combinations of the US
// Core 6.1.0 server CapabilityStatement
// (hl7.org/fhir/us/core/STU6.1/CapabilityStatement-us-core-server.html), in
// its order.
func USCoreCombinations() []Combination {
	out := slices.Clone(loadUSCore().combinations)
	for i := range out {
		out[i].Required = slices.Clone(out[i].Required)
		out[i].Optional = slices.Clone(out[i].Optional)
	}
	return out
}

func decodeUSCore(gz []byte) (*usCoreTables, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	var tj struct {
		SearchParams []searchParamJSON `json:"searchParams"`
		Profiles     []struct {
			URL  string `json:"url"`
			Type string `json:"type"`
		} `json:"profiles"`
		Combinations []struct {
			Type        string   `json:"type"`
			Required    []string `json:"required"`
			Optional    []string `json:"optional"`
			Expectation string   `json:"expectation"`
		} `json:"combinations"`
	}
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, err
	}
	t := &usCoreTables{}
	for _, s := range tj.SearchParams {
		t.searchParams = append(t.searchParams, s.param())
	}
	for _, p := range tj.Profiles {
		t.profiles = append(t.profiles, Profile{URL: p.URL, Type: p.Type})
	}
	for _, c := range tj.Combinations {
		t.combinations = append(t.combinations, Combination(c))
	}
	return t, nil
}
