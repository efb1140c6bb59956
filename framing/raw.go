package framing

// NewRawDecoder returns a Decoder for the raw framing: a RawDecoder.
func NewRawDecoder() Decoder { return RawDecoder{} }

// RawDecoder is the Decoder of the raw framing (websocketd's --binary):
// whatever buf holds becomes one whole Binary message, so message
// boundaries are wherever the reads happened to fall. It keeps no state;
// its zero value is ready to use and may be shared.
type RawDecoder struct{}

// Decode implements Decoder: it consumes all of a non-empty buf as one
// Binary message, and never returns an error.
func (RawDecoder) Decode(dst []Piece, buf []byte, full, eof bool) ([]Piece, int, error) {
	if len(buf) == 0 || len(dst) == cap(dst) {
		return dst, 0, nil
	}
	return append(dst, Piece{Data: buf, Kind: Binary, First: true, Final: true}), len(buf), nil
}

// RawEncoder is the Encoder of the raw framing: payloads are written as
// they are, with nothing around them, so the child cannot tell where one
// message ends and the next begins.
type RawEncoder struct{}

// AppendPrefix returns dst unchanged.
func (RawEncoder) AppendPrefix(dst []byte, p Piece) []byte { return dst }

// Suffix returns nothing.
func (RawEncoder) Suffix(p Piece) []byte { return nil }
