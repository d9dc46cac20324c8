package session_test

import (
	"testing"

	"github.com/ringtrace/ringtrace/tracer/event"
	"github.com/ringtrace/ringtrace/tracer/session"
)

// TestEventMaskCall: a call's one-record form is enabled exactly when both
// events it splits into are asked for (a trace of returns only must not
// get entries, nor one of entries only returns).
func TestEventMaskCall(t *testing.T) {
	call := uint32(1) << uint(event.SendmsgCall)
	for _, tc := range []struct {
		kinds []event.Kind
		want  bool
	}{
		{[]event.Kind{event.SendmsgEnter, event.SendmsgReturn}, true},
		{event.DefaultKinds(), true},
		{[]event.Kind{event.SendmsgReturn}, false},
		{[]event.Kind{event.SendmsgEnter, event.FrameState}, false},
	} {
		if got := session.EventMask(tc.kinds)&call != 0; got != tc.want {
			t.Errorf("%v: one-record calls %v, want %v", tc.kinds, got, tc.want)
		}
	}
}
