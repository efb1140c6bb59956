package transport

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/framing"
)

type status struct {
	ok   bool
	text string
}

func (s status) Success() bool  { return s.ok }
func (s status) String() string { return s.text }

// TestCloses checks each way a client ends becomes the code the README's
// table of close codes promises.
func TestCloses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		got    Close
		code   CloseCode
		reason string
	}{
		{"protocol error", ForError(errors.New("bad frame")), CloseProtocolError, "bad frame"},
		{"too big, wrapped", ForError(fmt.Errorf("frame: %w", ErrTooBig)), CloseMessageTooBig, "frame: " + ErrTooBig.Error()},
		{"bad UTF-8", ForError(ErrBadUTF8), CloseInvalidPayload, ErrBadUTF8.Error()},
		{"bad UTF-8 in its own words", ForError(BadUTF8("close reason is not valid UTF-8")), CloseInvalidPayload, "close reason is not valid UTF-8"},
		{"ping unanswered", ForError(ErrPingTimeout), CloseGoingAway, "no answer to ping"},
		{"assembly budget", ForError(ErrBudget), CloseTryAgainLater, ErrBudget.Error()},
		{"internal", ForError(Internal("read buffer too small")), CloseInternalError, "read buffer too small"},
		{"child exit 0", ChildExited(status{true, "exit status 0"}, nil), CloseNormal, ""},
		{"child exit 3", ChildExited(status{false, "exit status 3"}, nil), CloseInternalError, "program exit status 3"},
		{"child cut mid-message", ChildExited(status{true, "exit status 0"}, framing.ErrTruncated), CloseInternalError, "program exit status 0 mid-message"},
		{"child output malformed", ChildExited(status{true, "exit status 0"}, framing.ErrMuxRecord), CloseInternalError, "program output is malformed"},
		{"slow", Slow(false, 0), CloseTryAgainLater, "too slow: outgoing queue full"},
		{"slow mid-message", Slow(true, 0), CloseTryAgainLater, "too slow: outgoing queue full inside a message"},
		{"stalled", Slow(false, 5*time.Second), CloseTryAgainLater, "too slow: took nothing for 5s"},
		{"child's close record", ByChild(4000, "bye"), 4000, "bye"},
		{"child's close record without a code", ByChild(0, ""), CloseNormal, ""},
		{"shutdown", Shutdown, CloseGoingAway, "server shutting down"},
		{"restart", Restart, CloseServiceRestart, "the program restarts; reconnect"},
		{"gone while blocked, late", GoneWhileBlocked(true), CloseGoingAway, "no answer to ping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got.Code != tc.code || tc.got.Reason != tc.reason {
				t.Fatalf("close %d %q, want %d %q", tc.got.Code, tc.got.Reason, tc.code, tc.reason)
			}
		})
	}
}
