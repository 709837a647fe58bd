package sqlite

import (
	"sync/atomic"
	"unsafe"

	"smartfhir/internal/store/sqlstore"
)

// walIndex reads the header of a database's wal-index: the first bytes of
// the "-shm" file beside it, which every connection of every process maps
// and which every commit rewrites (sqlite.org/walformat.html, "The
// WAL-Index Header"). The header is kept twice, 48 bytes each; a writer
// updates the second copy and then the first, a reader reads the first and
// then the second, and sees a commit under way when they differ. Each copy
// is twelve 32-bit words; the third (bytes 8–11) is iChange, incremented by
// every transaction.
type walIndex struct {
	mem []byte // the mapped start of the -shm file, at least walIndexHdrSize
}

// walIndexHdrSize is the size of both header copies.
const walIndexHdrSize = 2 * 48

// Generation implements sqlstore.Generationer.
func (w *walIndex) Generation() (sqlstore.Generation, bool) {
	var a, b [12]uint32
	p := unsafe.Pointer(unsafe.SliceData(w.mem))
	for i := range a {
		a[i] = atomic.LoadUint32((*uint32)(unsafe.Add(p, 4*i)))
	}
	for i := range b {
		b[i] = atomic.LoadUint32((*uint32)(unsafe.Add(p, 48+4*i)))
	}
	if a != b {
		return sqlstore.Generation{}, false
	}
	// Word 2 is iChange; the others (version, page size, the last
	// frame, the page count, checksums and salts) join it.
	g := sqlstore.Generation{Change: a[2]}
	copy(g.State[:2], a[:2])
	copy(g.State[2:], a[3:])
	return g, true
}
