package poll

import (
	"sync"

	"github.com/gobwas/pool/pbytes"
)

// buffers hands out the byte slices that carry data between a socket and
// a child. A buffer is held only while data moves: readers give theirs
// back before they wait for more input, so an idle session holds none.
var buffers = pbytes.New(512, 1<<20)

// Get returns a pooled buffer of length size; give it back with Put.
func Get(size int) []byte { return buffers.GetLen(size) }

// GetCap returns a pooled buffer of length 0 and capacity at least size.
func GetCap(size int) []byte { return buffers.Get(0, size) }

// Put gives back a buffer from Get or GetCap; nil is ignored.
func Put(b []byte) {
	if b != nil {
		buffers.Put(b)
	}
}

// MaxVectors bounds the vectors one writev is given, under Linux's
// IOV_MAX of 1024.
const MaxVectors = 769

// Vectors is scratch for one writev.
type Vectors struct {
	IOV [MaxVectors][]byte
}

var vectorPool = sync.Pool{New: func() any { return new(Vectors) }}

// GetVectors returns scratch for a writev; give it back with PutVectors.
func GetVectors() *Vectors { return vectorPool.Get().(*Vectors) }

// PutVectors gives back scratch from GetVectors. The caller clears the
// vectors it used, so the pool pins no data buffer; clearing all of them
// would cost a small write more than the write.
func PutVectors(v *Vectors) { vectorPool.Put(v) }
