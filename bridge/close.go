package bridge

import (
	"fmt"
)

// CloseCode is a WebSocket close status code (RFC 6455 section 7.4). A
// fallback transport maps it onto its own way of ending a stream.
type CloseCode uint16

// Close codes the bridge sends or reads.
const (
	CloseNormal          CloseCode = 1000
	CloseGoingAway       CloseCode = 1001
	CloseProtocolError   CloseCode = 1002
	CloseUnsupportedData CloseCode = 1003
	CloseNoStatus        CloseCode = 1005 // never sent: no code in the close frame
	CloseAbnormal        CloseCode = 1006 // never sent: no close frame at all
	CloseInvalidPayload  CloseCode = 1007
	ClosePolicyViolation CloseCode = 1008
	CloseMessageTooBig   CloseCode = 1009
	CloseInternalError   CloseCode = 1011
	CloseServiceRestart  CloseCode = 1012
	CloseTryAgainLater   CloseCode = 1013
)

// validOnWire reports whether a peer may send code in a close frame. 1012
// to 1014 are registered with IANA after RFC 6455 and accepted.
func (c CloseCode) validOnWire() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014, c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// CloseError says why a session's client side ended: the close code that
// was sent or received, its reason, and the cause behind it.
type CloseError struct {
	Code   CloseCode
	Reason string
	Remote bool  // the client sent the close frame (or went away)
	Err    error // the cause, when there is one beyond the code
}

func (e *CloseError) Error() string {
	who := "sent"
	if e.Remote {
		who = "received"
	}
	s := fmt.Sprintf("close %d %s", e.Code, who)
	if e.Reason != "" {
		s += fmt.Sprintf(" (%s)", e.Reason)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CloseError) Unwrap() error { return e.Err }

// truncReason cuts a close reason to the 123 bytes a close frame can carry,
// at a UTF-8 boundary.
func truncReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}
