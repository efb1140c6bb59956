package framing

import "sync"

// MaxBatch is the most pieces a batch holds: what a Decoder fills from a
// pooled slice (GetPieces), and what WriteVectors frames into one write,
// whose three vectors a piece stay under Linux's IOV_MAX of 1024.
const MaxBatch = 256

// piecePool recycles the arrays pieces are collected in between a read
// and the write that passes them on; an idle session holds none. It holds
// the arrays themselves: a pointer to a slice header, made at each Put,
// would be an allocation at every read.
var piecePool = sync.Pool{New: func() any { return new([MaxBatch]Piece) }}

// GetPieces returns an empty slice of capacity MaxBatch from a pool.
func GetPieces() []Piece { return piecePool.Get().(*[MaxBatch]Piece)[:0] }

// PutPieces gives back a slice from GetPieces, dropping its references to
// data buffers; nil, or a slice of another capacity, is ignored.
func PutPieces(p []Piece) {
	if cap(p) != MaxBatch {
		return
	}
	a := (*[MaxBatch]Piece)(p[:MaxBatch])
	clear(a[:])
	piecePool.Put(a)
}

// vectors is the scratch WriteVectors frames a batch into: the prefixes
// and the vectors handed to write.
type vectors struct {
	hdr [MaxBatch * MaxPrefix]byte
	iov [MaxBatch*3 + 1][]byte
}

var vectorPool = sync.Pool{New: func() any { return new(vectors) }}

// WriteVectors frames pieces with enc and hands write the vectors, prefix,
// data and suffix of up to MaxBatch pieces at a time, so the data goes out
// without a copy and in as few system calls as the batch allows. Both
// directions of a session use it: to the child with its stdio framing, to
// the client with its transport's. The vectors are valid only during the
// call to write.
func WriteVectors(pieces []Piece, enc Encoder, write func(iov [][]byte) error) error {
	v := vectorPool.Get().(*vectors)
	defer vectorPool.Put(v)
	for len(pieces) > 0 {
		n := min(len(pieces), MaxBatch)
		hdr, iov := v.hdr[:0], v.iov[:0]
		for _, p := range pieces[:n] {
			start := len(hdr)
			hdr = enc.AppendPrefix(hdr, p)
			if len(hdr) > start {
				iov = append(iov, hdr[start:])
			}
			if len(p.Data) > 0 {
				iov = append(iov, p.Data)
			}
			if suf := enc.Suffix(p); len(suf) > 0 {
				iov = append(iov, suf)
			}
		}
		err := write(iov)
		clear(iov) // the pool pins no data
		if err != nil {
			return err
		}
		pieces = pieces[n:]
	}
	return nil
}

// DataLen returns the bytes of data pieces carry, framing left out.
func DataLen(pieces []Piece) int64 {
	var n int64
	for _, p := range pieces {
		n += int64(len(p.Data))
	}
	return n
}
