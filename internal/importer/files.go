package importer

import (
	"bufio"
	"cmp"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Format is how a file holds resources.
type Format int

// The formats.
const (
	// JSON is one JSON resource: a batch or transaction Bundle, a
	// collection Bundle, or any single resource.
	JSON Format = iota
	// NDJSON is one resource per line (Bulk Data, ndjson.org).
	NDJSON
)

// Compression is how a file is compressed.
type Compression int

// The compressions.
const (
	None Compression = iota
	Gzip
	Bzip2
)

// File is one file to load.
type File struct {
	Path        string
	Format      Format
	Compression Compression
	// Shared marks Bundles of resources that other files refer to
	// (Synthea's hospitalInformation* and practitionerInformation*): they
	// load first, one after the other, before anything else starts.
	Shared bool
	// Size is the file's size on disk, in bytes.
	Size int64
}

// sharedPrefixes name the files Synthea writes for the resources every
// patient Bundle refers to conditionally (Organization, Location,
// Practitioner, PractitionerRole).
var sharedPrefixes = []string{"hospitalInformation", "practitionerInformation"}

// kind tells the format and compression from a file name; ok is false for
// any other extension.
func kind(name string) (Format, Compression, bool) {
	name = strings.ToLower(name)
	c := None
	switch {
	case strings.HasSuffix(name, ".gz"):
		c, name = Gzip, strings.TrimSuffix(name, ".gz")
	case strings.HasSuffix(name, ".bz2"):
		c, name = Bzip2, strings.TrimSuffix(name, ".bz2")
	}
	switch {
	case strings.HasSuffix(name, ".ndjson"):
		return NDJSON, c, true
	case strings.HasSuffix(name, ".json"):
		return JSON, c, true
	}
	return 0, 0, false
}

func isShared(path string) bool {
	base := filepath.Base(path)
	// Synthea numbers its output ("0-hospitalInformation….json").
	base = strings.TrimLeft(base, "0123456789-_")
	for _, p := range sharedPrefixes {
		if strings.HasPrefix(base, p) {
			return true
		}
	}
	return false
}

// Find expands paths — files, or folders searched recursively — into the
// files to load, in loading order: shared Bundles first, by path, then the
// rest largest first (ties by path). Shared Bundles are known by Synthea's
// names; a transaction that comes before the resources it refers to
// conditionally, under any names, is tried again once the other files
// have loaded (Load). Several files load at once, so a
// large file met last would load alone while the other workers idle;
// largest first leaves the small ones to fill in at the end. A file named
// explicitly must exist and have a known extension (.json, .ndjson,
// optionally .gz or .bz2); in folders, files with other extensions
// (README, LICENSE…) are passed over. A path named twice is loaded once.
func Find(paths []string) ([]File, error) {
	if len(paths) == 0 {
		return nil, errors.New("no file or folder to import")
	}
	var files []File
	seen := map[string]bool{}
	add := func(path string, size int64) {
		f, c, _ := kind(path)
		if clean := filepath.Clean(path); !seen[clean] {
			seen[clean] = true
			files = append(files, File{Path: path, Format: f, Compression: c, Shared: isShared(path), Size: size})
		}
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: no such file or folder", p)
			}
			return nil, err
		}
		if !info.IsDir() {
			if _, _, ok := kind(p); !ok {
				return nil, fmt.Errorf("%s: unknown file type (want .json or .ndjson, optionally .gz or .bz2)", p)
			}
			add(p, info.Size())
			continue
		}
		n := len(files)
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			if _, _, ok := kind(path); !ok {
				return nil
			}
			// A link to a file is loaded like the file.
			st, err := os.Stat(path)
			if err != nil || !st.Mode().IsRegular() {
				return nil
			}
			add(path, st.Size())
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(files) == n {
			return nil, fmt.Errorf("%s: no .json or .ndjson files in this folder", p)
		}
	}
	slices.SortStableFunc(files, func(a, b File) int {
		if a.Shared != b.Shared {
			if a.Shared {
				return -1
			}
			return 1
		}
		if !a.Shared && a.Size != b.Size {
			return cmp.Compare(b.Size, a.Size)
		}
		return strings.Compare(a.Path, b.Path)
	})
	return files, nil
}

// open returns the file's decompressed content.
func (f File) open() (io.ReadCloser, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(fh, 256<<10)
	switch f.Compression {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			fh.Close()
			return nil, fmt.Errorf("not a valid gzip file: %w", err)
		}
		return readCloser{zr, fh}, nil
	case Bzip2:
		return readCloser{bzip2.NewReader(br), fh}, nil
	}
	return readCloser{br, fh}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// readAll reads the whole decompressed file, naming the compression in a
// decoding error (a truncated or corrupt archive).
func (f File) readAll() ([]byte, error) {
	rc, err := f.open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		switch f.Compression {
		case Gzip:
			return nil, fmt.Errorf("corrupt gzip data: %w", err)
		case Bzip2:
			return nil, fmt.Errorf("corrupt bzip2 data: %w", err)
		}
		return nil, err
	}
	return b, nil
}
