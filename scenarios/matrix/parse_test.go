package matrix

import (
	"strings"
	"testing"
)

func TestParserFrames(t *testing.T) {
	const out = "boot noise\n" +
		"\n@@VMTEST:abc:begin probe/auto\n{\"x\": 1}\n\n@@VMTEST:abc:end probe/auto 0\n" +
		"progress line\n" +
		"@@VMTEST:other:begin run/auto/0\nnot ours\n@@VMTEST:other:end run/auto/0 0\n" +
		"@@VMTEST:abc:begin run/auto/0\n[1,\n2]\n@@VMTEST:abc:end run/auto/0 1 42\n" +
		"@@VMTEST:abc:begin run/auto/1\n[half a frame, then the guest died"
	want := []Frame{
		{Key: "probe/auto", Status: 0, Seconds: -1, Payload: []byte("{\"x\": 1}")},
		{Key: "run/auto/0", Status: 1, Seconds: 42, Payload: []byte("[1,\n2]")},
	}
	// Any split of the stream into writes gives the same frames.
	for _, chunk := range []int{1, 3, 7, len(out)} {
		var got []Frame
		p := NewParser("abc", func(f Frame) { got = append(got, f) })
		for i := 0; i < len(out); i += chunk {
			p.Write([]byte(out[i:min(i+chunk, len(out))]))
		}
		if len(got) != len(want) {
			t.Fatalf("chunk %d: %d frames %+v, want %d", chunk, len(got), got, len(want))
		}
		for i := range want {
			if got[i].Key != want[i].Key || got[i].Status != want[i].Status || got[i].Seconds != want[i].Seconds ||
				string(got[i].Payload) != string(want[i].Payload) {
				t.Errorf("chunk %d: frame %d = %+v, want %+v", chunk, i, got[i], want[i])
			}
		}
	}
}

// TestParserMismatchedEnd: an end marker for another key does not close
// the frame, and a begin restarts it.
func TestParserMismatchedEnd(t *testing.T) {
	var got []Frame
	p := NewParser("n", func(f Frame) { got = append(got, f) })
	p.Write([]byte("@@VMTEST:n:begin a\nx\n@@VMTEST:n:end b 0\n@@VMTEST:n:begin c\ny\n@@VMTEST:n:end c 3\n"))
	if len(got) != 1 || got[0].Key != "c" || got[0].Status != 3 || string(got[0].Payload) != "y" {
		t.Errorf("frames %+v", got)
	}
}

func TestParseTestOutput(t *testing.T) {
	out := strings.Join([]string{
		"--- PASS: TestA (0.01s)",
		"    --- PASS: TestA/sub (0.00s)",
		"    --- FAIL: TestB/x (0.00s)",
		"--- FAIL: TestB (0.02s)",
		"--- SKIP: TestC (0.00s)",
		"panic: test timed out after 10m0s",
		"FAIL",
	}, "\n")
	r := parseTestOutput(out)
	if r.Passed != 1 || strings.Join(r.Failed, ",") != "TestB/x,TestB" || strings.Join(r.Skipped, ",") != "TestC" ||
		!strings.HasPrefix(r.Detail, "panic: test timed out") {
		t.Errorf("parsed %+v", r)
	}
}

func TestParseTestOutputNamesWhy(t *testing.T) {
	out := strings.Join([]string{
		"=== RUN   TestA",
		"    a_test.go:10: a log line of a passing test",
		"--- PASS: TestA (0.01s)",
		"=== RUN   TestB",
		"    b_test.go:12: setting up",
		"    b_test.go:20: sleeps map[], wakers map[]: want TX-completion waits",
		"--- FAIL: TestB (0.02s)",
		"=== RUN   TestC",
		"    c_test.go:3: second failure",
		"--- FAIL: TestC (0.02s)",
		"FAIL",
	}, "\n")
	r := parseTestOutput(out)
	if want := "TestB: b_test.go:20: sleeps map[], wakers map[]: want TX-completion waits"; r.Detail != want {
		t.Errorf("detail %q, want %q", r.Detail, want)
	}
	if r := parseTestOutput("=== RUN   TestD\n    screen \x1b[?1049l\r\n--- FAIL: TestD (1.00s)\n"); r.Detail != "TestD: no test message; its last output: screen ?[?1049l?" {
		t.Errorf("detail of a failure with no message: %q", r.Detail)
	}
	if r := parseTestOutput("--- PASS: TestA (0.01s)\n    a_test.go:1: x\n"); r.Detail != "" {
		t.Errorf("passing output has detail %q", r.Detail)
	}
}
