// Command gen compiles the official FHIR R4 core package
// (hl7.fhir.r4.core-4.0.1.tgz) into the compact table that package spec
// embeds: the element trees of every resource and data type, the required
// bindings that can be expanded from the package itself, the search
// parameters and the compartment definitions. It also compiles the US Core
// 6.1.0 package (hl7.fhir.us.core-6.1.0.tgz) into a second table: its
// SearchParameters and its resource profiles.
//
// It is run by `go generate ./internal/fhir/spec` and uses only the standard
// library. Its output is deterministic: everything is sorted and the gzip
// header carries no name and no modification time, so regenerating gives the
// same bytes and a test catches drift.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
)

// OutputName is the file the generator writes in its output directory.
const OutputName = "r4.json.gz"

// maxCodes bounds the value sets we embed: a required binding to a larger
// set is not checked (none of the R4 core ones are that large, but the cap
// keeps the table small if a package ever grows one).
const maxCodes = 1000

func main() {
	log.SetFlags(0)
	pkg := flag.String("pkg", "", "path to hl7.fhir.r4.core-4.0.1.tgz (default: ../shared/data/fhir/ beside the module root)")
	usCore := flag.String("uscore", "", "path to hl7.fhir.us.core-6.1.0.tgz (default: ../shared/data/us-core/ beside the module root)")
	out := flag.String("out", ".", "output directory")
	flag.Parse()
	if *pkg == "" {
		p, err := defaultPackage()
		if err != nil {
			log.Fatalf("gen: %v", err)
		}
		*pkg = p
	}
	if *usCore == "" {
		p, err := defaultUSCorePackage()
		if err != nil {
			log.Fatalf("gen: %v", err)
		}
		*usCore = p
	}
	if err := generate(*pkg, *out); err != nil {
		log.Fatalf("gen: %v", err)
	}
	if err := generateUSCore(*usCore, *out); err != nil {
		log.Fatalf("gen: %v", err)
	}
}

// defaultPackage finds the core package relative to the module root (the
// directory holding go.mod), as the project's data README prescribes.
func defaultPackage() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "..", "shared", "data", "fhir", "hl7.fhir.r4.core-4.0.1.tgz"), nil
}

// defaultUSCorePackage finds the US Core package as defaultPackage does.
func defaultUSCorePackage() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "..", "shared", "data", "us-core", "hl7.fhir.us.core-6.1.0.tgz"), nil
}

// moduleRoot is the directory holding go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory; pass -pkg")
		}
		dir = parent
	}
}

// generate reads the package at pkgPath and writes OutputName into outDir.
func generate(pkgPath, outDir string) error {
	data, err := build(pkgPath)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, OutputName), data, 0o644)
}

// build returns the gzipped table for the package at pkgPath.
func build(pkgPath string) ([]byte, error) {
	p, err := readPackage(pkgPath)
	if err != nil {
		return nil, err
	}
	t, err := compile(p)
	if err != nil {
		return nil, err
	}
	return gzipJSON(t)
}

// gzipJSON encodes v as JSON and gzips it deterministically.
func gzipJSON(v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	// The zero gzip.Header has no name and a zero ModTime, which
	// compress/gzip writes as 0: the output depends on the input only.
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(js); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ---- input: the parts of the package's JSON resources we read ----

type pkgFiles struct {
	structDefs   []structureDefinition
	valueSets    map[string]*valueSet   // by canonical URL
	codeSystems  map[string]*codeSystem // by canonical URL
	searchParams []searchParameter
	compartments []compartmentDefinition
}

type structureDefinition struct {
	URL            string `json:"url"`
	Name           string `json:"name"`
	Type           string `json:"type"`
	Kind           string `json:"kind"`
	Abstract       bool   `json:"abstract"`
	Derivation     string `json:"derivation"`
	BaseDefinition string `json:"baseDefinition"`
	Snapshot       struct {
		Element []elementDefinition `json:"element"`
	} `json:"snapshot"`
}

type elementDefinition struct {
	Path             string `json:"path"`
	Min              int    `json:"min"`
	Max              string `json:"max"`
	ContentReference string `json:"contentReference"`
	IsSummary        bool   `json:"isSummary"`
	Type             []struct {
		Code      string      `json:"code"`
		Extension []extension `json:"extension"`
	} `json:"type"`
	Binding *struct {
		Strength string `json:"strength"`
		ValueSet string `json:"valueSet"`
	} `json:"binding"`
}

type extension struct {
	URL         string `json:"url"`
	ValueURL    string `json:"valueUrl"`
	ValueString string `json:"valueString"`
}

type valueSet struct {
	URL     string `json:"url"`
	Compose *struct {
		Include []vsInclude `json:"include"`
		Exclude []vsInclude `json:"exclude"`
	} `json:"compose"`
}

type vsInclude struct {
	System  string                  `json:"system"`
	Concept []struct{ Code string } `json:"concept"`
	Filter  []struct {
		Property string `json:"property"`
		Op       string `json:"op"`
		Value    string `json:"value"`
	} `json:"filter"`
	ValueSet []string `json:"valueSet"`
}

type codeSystem struct {
	URL     string    `json:"url"`
	Content string    `json:"content"`
	Concept []concept `json:"concept"`
}

type concept struct {
	Code    string    `json:"code"`
	Concept []concept `json:"concept"`
}

type searchParameter struct {
	URL         string   `json:"url"`
	Name        string   `json:"name"`
	Code        string   `json:"code"`
	Base        []string `json:"base"`
	Type        string   `json:"type"`
	Expression  string   `json:"expression"`
	Target      []string `json:"target"`
	Modifier    []string `json:"modifier"`
	Comparator  []string `json:"comparator"`
	MultipleOr  *bool    `json:"multipleOr"`
	MultipleAnd *bool    `json:"multipleAnd"`
	Component   []struct {
		Definition string `json:"definition"`
		Expression string `json:"expression"`
	} `json:"component"`
}

type compartmentDefinition struct {
	Code     string `json:"code"`
	Resource []struct {
		Code  string   `json:"code"`
		Param []string `json:"param"`
	} `json:"resource"`
}

func readPackage(path string) (*pkgFiles, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p := &pkgFiles{valueSets: map[string]*valueSet{}, codeSystems: map[string]*codeSystem{}}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		name := strings.TrimPrefix(h.Name, "package/")
		if h.Typeflag != tar.TypeReg || strings.Contains(name, "/") || !strings.HasSuffix(name, ".json") {
			continue
		}
		kind, _, _ := strings.Cut(name, "-")
		switch kind {
		case "StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter", "CompartmentDefinition":
		default:
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		if err := p.add(kind, b); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, name, err)
		}
	}
	return p, nil
}

// add decodes one package file of the given resource type into p.
func (p *pkgFiles) add(kind string, b []byte) error {
	switch kind {
	case "StructureDefinition":
		var sd structureDefinition
		if err := json.Unmarshal(b, &sd); err != nil {
			return err
		}
		p.structDefs = append(p.structDefs, sd)
	case "ValueSet":
		vs := new(valueSet)
		if err := json.Unmarshal(b, vs); err != nil {
			return err
		}
		p.valueSets[vs.URL] = vs
	case "CodeSystem":
		cs := new(codeSystem)
		if err := json.Unmarshal(b, cs); err != nil {
			return err
		}
		p.codeSystems[cs.URL] = cs
	case "SearchParameter":
		var sp searchParameter
		if err := json.Unmarshal(b, &sp); err != nil {
			return err
		}
		p.searchParams = append(p.searchParams, sp)
	case "CompartmentDefinition":
		var cd compartmentDefinition
		if err := json.Unmarshal(b, &cd); err != nil {
			return err
		}
		p.compartments = append(p.compartments, cd)
	}
	return nil
}
