package validate

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"smartfhir/internal/fhir"
	"smartfhir/internal/testenv"
)

// example is one resource of the official R4 examples package.
type example struct {
	name string // file name inside the package
	raw  []byte
}

var (
	examplesOnce sync.Once
	examplesList []example
	examplesErr  error
)

// examples reads every JSON resource of hl7.fhir.r4.examples-4.0.1.tgz,
// straight from the archive, once per test binary.
func examples(t testing.TB) []example {
	t.Helper()
	path := filepath.Join(testenv.SharedData(t), "fhir", "hl7.fhir.r4.examples-4.0.1.tgz")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("R4 examples package not found (%v): these tests need ../shared/data beside the module root", err)
	}
	examplesOnce.Do(func() { examplesList, examplesErr = readExamples(path) })
	if examplesErr != nil {
		t.Fatal(examplesErr)
	}
	return examplesList
}

func readExamples(path string) ([]example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var out []example
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(h.Name, "package/")
		// package.json and .index.json describe the package; everything
		// else at the top level is a resource.
		if h.Typeflag != tar.TypeReg || strings.Contains(name, "/") || !strings.HasSuffix(name, ".json") ||
			name == "package.json" || strings.HasPrefix(name, ".") {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out = append(out, example{name, b})
	}
}

// invalidExamples lists the official examples that break the R4
// specification itself, with the exact reason. Each is still checked: it
// must be rejected, and for that reason only.
var invalidExamples = map[string]string{
	// ImplementationGuide.name and .status are 1..1 (R4 ImplementationGuide);
	// the package's own guide resources omit both.
	"ImplementationGuide-fhir.json": "ImplementationGuide.name: missing required element",
	"ig-r4.json":                    "ImplementationGuide.name: missing required element",
	// Questionnaire.item.linkId is 1..1; the nested display items of qs1
	// have none.
	"Questionnaire-qs1.json": "Questionnaire.item[0].item[0].linkId: missing required element",
	// SearchParameter.base is 1..*; the extension search parameters of the
	// ValueSet and CodeSystem extensions have no base.
	"SearchParameter-codesystem-extensions-CodeSystem-author.json":    "SearchParameter.base: missing required element",
	"SearchParameter-codesystem-extensions-CodeSystem-effective.json": "SearchParameter.base: missing required element",
	"SearchParameter-codesystem-extensions-CodeSystem-end.json":       "SearchParameter.base: missing required element",
	"SearchParameter-codesystem-extensions-CodeSystem-keyword.json":   "SearchParameter.base: missing required element",
	"SearchParameter-codesystem-extensions-CodeSystem-workflow.json":  "SearchParameter.base: missing required element",
	"SearchParameter-valueset-extensions-ValueSet-author.json":        "SearchParameter.base: missing required element",
	"SearchParameter-valueset-extensions-ValueSet-effective.json":     "SearchParameter.base: missing required element",
	"SearchParameter-valueset-extensions-ValueSet-end.json":           "SearchParameter.base: missing required element",
	"SearchParameter-valueset-extensions-ValueSet-keyword.json":       "SearchParameter.base: missing required element",
	"SearchParameter-valueset-extensions-ValueSet-workflow.json":      "SearchParameter.base: missing required element",
	// Its id has 67 characters; an id has at most 64 (R4 §2.24.0.1 id).
	"SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json": "SearchParameter.id: id is not a valid id",
}

func TestExamplesAreValid(t *testing.T) {
	exs := examples(t)
	if len(exs) < 5000 {
		t.Fatalf("read %d examples, want all of them (> 5000)", len(exs))
	}
	for _, ex := range exs {
		err := Resource(ex.raw)
		if want, listed := invalidExamples[ex.name]; listed {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %v, want the known defect %q", ex.name, err, want)
			}
			continue
		}
		if err != nil {
			var fe *fhir.Error
			errors.As(err, &fe)
			for _, is := range fe.Issues {
				t.Errorf("%s: %s [%s]", ex.name, is.Diagnostics, is.Code)
			}
		}
	}
}
