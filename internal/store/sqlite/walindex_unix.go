//go:build unix

package sqlite

import (
	"fmt"
	"os"
	"syscall"
)

// mapWALIndex maps the header of the wal-index of the database at path
// read-only. The file exists once a connection has read the database in
// WAL mode, and stays while any connection has it open (SQLite removes it
// only when the last connection of any process closes; watchWALIndex holds
// one open).
func mapWALIndex(path string) (*walIndex, error) {
	f, err := os.Open(path + "-shm")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < walIndexHdrSize {
		return nil, fmt.Errorf("%s-shm holds %d bytes, too few for a wal-index header", path, st.Size())
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, walIndexHdrSize, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping %s-shm: %w", path, err)
	}
	return &walIndex{mem: mem}, nil
}
