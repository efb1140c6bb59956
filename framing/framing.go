package framing

import "fmt"

// Kind says how a message's bytes are to be read: as UTF-8 text or as
// opaque binary. It maps onto the WebSocket text and binary opcodes.
//
// Open and Close are not messages but events of a connection; only the mux
// framing carries them (see MuxDecoder), and the other framings never
// produce them.
type Kind uint8

const (
	Binary Kind = iota // opaque bytes; WebSocket opcode 0x2
	Text               // UTF-8 text; WebSocket opcode 0x1
	Open               // mux only: a client connected; Data is its environment
	Close              // mux only: a connection ends; Data is a close payload
)

// String returns "binary", "text", "open" or "close".
func (k Kind) String() string {
	switch k {
	case Binary:
		return "binary"
	case Text:
		return "text"
	case Open:
		return "open"
	case Close:
		return "close"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Piece is a contiguous part of one message: a whole message when First and
// Final are both set, otherwise a fragment of one. Every piece of a message
// carries the message's Kind.
//
// Data is borrowed: it aliases the buffer it was decoded from (or a static,
// capacity-clipped slice of the package, such as the U+FFFD replacement,
// or, for a mux close record cut up by a tiny buffer, the MuxDecoder's own
// storage) and is valid only until that buffer is reused or the Decoder is
// called again. Nobody writes through it.
type Piece struct {
	Data  []byte
	Kind  Kind
	First bool   // the piece opens its message
	Final bool   // the piece ends its message
	Conn  uint32 // mux only: the connection the record is for; 0 from the child means every client
}

// Decoder splits the byte stream a child writes on stdout into message
// pieces. It may keep state between calls (a message begun but not ended).
// A Decoder is used by one goroutine at a time.
type Decoder interface {
	// Decode appends to dst the pieces found at the start of buf and
	// returns them with the number of bytes of buf they consumed. The
	// pieces alias buf. Bytes not consumed are handed back at the start of
	// buf, with more data after them, on the next call.
	//
	// Decode stops early, leaving the rest unconsumed, when dst is full
	// (len(dst) == cap(dst)).
	//
	// full says buf cannot grow: when buf holds no complete message,
	// Decode must still consume it (as a non-final piece) so the stream
	// moves on. eof says no more data will come: Decode consumes all of
	// buf and ends any open message with a Final piece (possibly empty).
	//
	// Decode never allocates and never keeps buf. With eof, call Decode
	// again (with what it left unconsumed, possibly nothing) until it
	// returns no pieces: dst may fill before the stream's end is out.
	// Decode makes progress whenever cap(dst) > len(dst) and buf is full
	// or eof, for any buffer size down to one byte.
	//
	// An error means the stream is malformed; the caller ends the session.
	// The pieces returned with an error are sound and come before the
	// fault: the caller may send them first. Errors are sticky where the
	// decoder has state: later calls return the same error.
	Decode(dst []Piece, buf []byte, full, eof bool) ([]Piece, int, error)
}

// Encoder frames message pieces for the child's stdin. It says what to
// write around a piece's data; the caller writes prefix, data, suffix with
// no copy of the data. An Encoder keeps no state between pieces beyond its
// configuration and may be shared by goroutines.
type Encoder interface {
	// AppendPrefix appends to dst the bytes that go before p.Data.
	AppendPrefix(dst []byte, p Piece) []byte
	// Suffix returns the bytes that go after p.Data. The result is
	// static: callers must not modify it.
	Suffix(p Piece) []byte
}

// MaxPrefix is the most bytes any Encoder's AppendPrefix appends for one
// piece: callers can size scratch buffers from it.
const MaxPrefix = 16

// Names lists the framings New accepts, in the order the help text shows.
var Names = []string{Line, Raw, Len32, Mux}

// The framings' names, as New takes them.
const (
	Line  = "line"
	Raw   = "raw"
	Len32 = "len32"
	Mux   = "mux" // the shared mode's addressed records
)

// New returns a fresh Decoder and an Encoder for the named framing
// ("line", "raw", "len32" or "mux"). The Decoders are a *LineDecoder
// (whose Replaced method counts U+FFFD substitutions), a RawDecoder, a
// *Len32Decoder and a *MuxDecoder.
func New(name string) (Decoder, Encoder, error) {
	switch name {
	case Line:
		return NewLineDecoder(), LineEncoder{}, nil
	case Raw:
		return NewRawDecoder(), RawEncoder{}, nil
	case Len32:
		return NewLen32Decoder(), Len32Encoder{}, nil
	case Mux:
		return NewMuxDecoder(), MuxEncoder{}, nil
	}
	return nil, nil, fmt.Errorf("framing: unknown framing %q (want one of line, raw, len32, mux)", name)
}
