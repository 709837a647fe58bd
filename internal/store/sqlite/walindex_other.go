//go:build !unix

package sqlite

import "errors"

// mapWALIndex is only implemented where SQLite maps the -shm file (Unix);
// elsewhere the store reads without a cache.
func mapWALIndex(string) (*walIndex, error) {
	return nil, errors.New("the wal-index is not mapped on this system")
}
