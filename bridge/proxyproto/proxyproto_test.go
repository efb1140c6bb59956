package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
)

// v2 builds a version 2 header: command, family/protocol byte, body.
func v2(cmd, famProto byte, body []byte) []byte {
	b := append([]byte{}, sigV2...)
	b = append(b, 0x20|cmd, famProto, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(body)))
	return append(b, body...)
}

func inet4(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sp), dp)
}

func inet6(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sp), dp)
}

func TestRead(t *testing.T) {
	const rest = "GET / HTTP/1.1\r\n\r\n"
	tlv := append(inet4("192.0.2.1", "127.0.0.1", 4000, 8080), 0x04, 0, 2, 'o', 'k') // a NOOP TLV
	for _, tc := range []struct {
		name string
		in   []byte
		want Header
		err  error
	}{
		{"v1 TCP4", []byte("PROXY TCP4 192.0.2.1 127.0.0.1 56324 8080\r\n"), Header{Version: 1,
			Source: netip.MustParseAddrPort("192.0.2.1:56324"), Dest: netip.MustParseAddrPort("127.0.0.1:8080")}, nil},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n"), Header{Version: 1,
			Source: netip.MustParseAddrPort("[2001:db8::1]:1"), Dest: netip.MustParseAddrPort("[::1]:65535")}, nil},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Local: true}, nil},
		{"v1 UNKNOWN with addresses", []byte("PROXY UNKNOWN ffff:: ::1 1 2\r\n"), Header{Version: 1, Local: true}, nil},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::1 ::1 1 2\r\n"), Header{}, ErrMalformed},
		{"v1 leading zero port", []byte("PROXY TCP4 192.0.2.1 127.0.0.1 080 80\r\n"), Header{}, ErrMalformed},
		{"v1 port too big", []byte("PROXY TCP4 192.0.2.1 127.0.0.1 65536 80\r\n"), Header{}, ErrMalformed},
		{"v1 two spaces", []byte("PROXY TCP4  192.0.2.1 127.0.0.1 1 80\r\n"), Header{}, ErrMalformed},
		{"v1 bare LF", []byte("PROXY TCP4 192.0.2.1 127.0.0.1 1 80\n"), Header{}, ErrMalformed},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 ::1 1 80\r\n"), Header{}, ErrMalformed},
		{"v1 too long", append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("x"), 200)...), Header{}, ErrTooLarge},
		{"v2 IPv4", v2(1, 0x11, inet4("192.0.2.1", "127.0.0.1", 4000, 8080)), Header{Version: 2,
			Source: netip.MustParseAddrPort("192.0.2.1:4000"), Dest: netip.MustParseAddrPort("127.0.0.1:8080")}, nil},
		{"v2 IPv6", v2(1, 0x21, inet6("2001:db8::7", "::1", 4000, 8080)), Header{Version: 2,
			Source: netip.MustParseAddrPort("[2001:db8::7]:4000"), Dest: netip.MustParseAddrPort("[::1]:8080")}, nil},
		{"v2 TLVs after the addresses", v2(1, 0x11, tlv), Header{Version: 2,
			Source: netip.MustParseAddrPort("192.0.2.1:4000"), Dest: netip.MustParseAddrPort("127.0.0.1:8080")}, nil},
		{"v2 LOCAL", v2(0, 0x00, nil), Header{Version: 2, Local: true}, nil},
		{"v2 LOCAL with an address block", v2(0, 0x11, inet4("192.0.2.1", "127.0.0.1", 1, 2)), Header{Version: 2, Local: true}, nil},
		{"v2 UNSPEC", v2(1, 0x00, nil), Header{Version: 2, Local: true}, nil},
		{"v2 unix", v2(1, 0x31, make([]byte, 216)), Header{Version: 2, Local: true}, nil},
		{"v2 short address block", v2(1, 0x11, make([]byte, 11)), Header{}, ErrMalformed},
		{"v2 datagram", v2(1, 0x12, inet4("192.0.2.1", "127.0.0.1", 1, 2)), Header{}, ErrMalformed},
		{"v2 bad command", v2(2, 0x11, inet4("192.0.2.1", "127.0.0.1", 1, 2)), Header{}, ErrMalformed},
		{"v2 version 3", append(append(append([]byte{}, sigV2...), 0x31, 0x11, 0, 12), inet4("192.0.2.1", "127.0.0.1", 1, 2)...), Header{}, ErrMalformed},
		{"v2 too large", v2(1, 0x11, make([]byte, MaxV2)), Header{}, ErrTooLarge},
		{"HTTP", []byte(rest), Header{}, ErrNoHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(append(append([]byte{}, tc.in...), rest...))
			h, err := Read(r)
			if !errors.Is(err, tc.err) || h != tc.want {
				t.Fatalf("Read = %+v, %v; want %+v, %v", h, err, tc.want, tc.err)
			}
			if err == nil {
				// Not a byte past the header: the request is intact.
				if left, _ := io.ReadAll(r); string(left) != rest {
					t.Errorf("left %q after the header, want %q", left, rest)
				}
			}
		})
	}
}

// TestReadCut: a header cut short is an error, never a hang or a panic.
func TestReadCut(t *testing.T) {
	for _, full := range [][]byte{[]byte("PROXY TCP4 192.0.2.1 127.0.0.1 56324 8080\r\n"), v2(1, 0x11, inet4("192.0.2.1", "127.0.0.1", 1, 2))} {
		for n := range len(full) {
			if _, err := Read(bytes.NewReader(full[:n])); err == nil {
				t.Errorf("Read of %q (cut at %d) succeeded", full[:n], n)
			}
		}
	}
}

func TestBegins(t *testing.T) {
	for in, want := range map[string]bool{"PROXY TCP4": true, "PRO": true, "\r\n\r\n\x00": true, "\r\n": true,
		"GET /": false, "PROXYX": false, "\r\n\r\nX": false, "": false} {
		if got := Begins([]byte(in)); got != want {
			t.Errorf("Begins(%q) = %v, want %v", in, got, want)
		}
	}
}

// FuzzRead: any input gives a header or an error, reads no more than the
// header's own length, and a header read is a sound one.
func FuzzRead(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 127.0.0.1 56324 8080\r\nGET"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(1, 0x21, inet6("2001:db8::7", "::1", 4000, 8080)))
	f.Add(v2(0, 0x00, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		h, err := Read(r)
		if err != nil {
			return
		}
		used := len(b) - r.Len()
		switch {
		case h.Version == 1 && (used > maxV1 || !bytes.HasSuffix(b[:used], []byte("\r\n"))):
			t.Fatalf("v1 header of %d bytes: %q", used, b[:used])
		case h.Version == 2 && used != 16+int(binary.BigEndian.Uint16(b[14:16])):
			t.Fatalf("v2 header read %d bytes, its length says otherwise", used)
		case h.Version != 1 && h.Version != 2:
			t.Fatalf("version %d", h.Version)
		case !h.Local && (!h.Source.IsValid() || !h.Dest.IsValid() || h.Source.Addr().Is4() != h.Dest.Addr().Is4()):
			t.Fatalf("addresses %v %v", h.Source, h.Dest)
		}
	})
}
