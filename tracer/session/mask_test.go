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

// TestEventMaskShort: frame events come in short records exactly when the
// call entries that name their threads are asked for too.
func TestEventMaskShort(t *testing.T) {
	short := uint32(1) << uint(event.FrameShort)
	for _, tc := range []struct {
		kinds []event.Kind
		want  bool
	}{
		{[]event.Kind{event.SendmsgEnter, event.FrameState}, true},
		{event.DefaultKinds(), true},
		{[]event.Kind{event.FrameState}, false},
		{[]event.Kind{event.FrameState, event.SendmsgReturn}, false},
		{[]event.Kind{event.SendmsgEnter}, false},
	} {
		if got := session.EventMask(tc.kinds)&short != 0; got != tc.want {
			t.Errorf("%v: short frame records %v, want %v", tc.kinds, got, tc.want)
		}
	}
}
