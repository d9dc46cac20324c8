package vm

import (
	"bytes"
	"strings"
	"testing"
)

const testNonce = "0123456789abcdef"

func rec(kind, args string) string {
	s := "\n" + markerTag + testNonce + ":" + kind
	if args != "" {
		s += " " + args
	}
	return s + "\n"
}

// feed runs stream through a Channel in chunks of size n (0: one write).
func feed(t *testing.T, stream string, n int) (string, []Record, error) {
	t.Helper()
	var out bytes.Buffer
	var recs []Record
	c := NewChannel(testNonce, &out, func(r Record) { recs = append(recs, r) })
	if n == 0 {
		n = len(stream) + 1
	}
	for i := 0; i < len(stream); i += n {
		end := min(i+n, len(stream))
		if w, err := c.Write([]byte(stream[i:end])); err != nil || w != end-i {
			t.Fatalf("Write = %d, %v", w, err)
		}
	}
	err := c.Close()
	return out.String(), recs, err
}

func TestChannel(t *testing.T) {
	cases := []struct {
		name   string
		stream string
		out    string
		recs   []Record
	}{
		{"plain", "hello\nworld\n", "hello\nworld\n", nil},
		{"records around output",
			rec("start", "") + "out\nerr\n" + rec("exit", "0"),
			"out\nerr\n", []Record{{"start", ""}, {"exit", "0"}}},
		{"output without final newline",
			rec("start", "") + "no newline" + rec("exit", "3"),
			"no newline", []Record{{"start", ""}, {"exit", "3"}}},
		{"empty lines kept",
			rec("start", "") + "\n\na\n\n" + rec("exit", "0"),
			"\n\na\n\n", []Record{{"start", ""}, {"exit", "0"}}},
		{"other nonce is output",
			rec("start", "") + "\n@@RINGVM:ffff:exit 9\n" + rec("exit", "1"),
			"\n@@RINGVM:ffff:exit 9\n", []Record{{"start", ""}, {"exit", "1"}}},
		{"marker prefix then newline",
			"x\n@@RING\n@@RINGVM:" + testNonce + ":exit 4\n",
			"x\n@@RING", []Record{{"exit", "4"}}},
		{"error record", rec("error", "insmod veth failed"), "", []Record{{"error", "insmod veth failed"}}},
		{"partial marker at end is output", "abc\n@@RINGVM:01", "abc\n@@RINGVM:01", nil},
		{"carriage return trimmed", "\n" + markerTag + testNonce + ":exit 5\r\n", "", []Record{{"exit", "5"}}},
	}
	for _, c := range cases {
		for _, n := range []int{0, 1, 2, 7} {
			out, recs, err := feed(t, c.stream, n)
			if err != nil {
				t.Errorf("%s/%d: Close: %v", c.name, n, err)
			}
			if out != c.out {
				t.Errorf("%s/%d: output %q, want %q", c.name, n, out, c.out)
			}
			if len(recs) != len(c.recs) {
				t.Errorf("%s/%d: records %v, want %v", c.name, n, recs, c.recs)
				continue
			}
			for i := range recs {
				if recs[i] != c.recs[i] {
					t.Errorf("%s/%d: record %d = %v, want %v", c.name, n, i, recs[i], c.recs[i])
				}
			}
		}
	}
}

func TestChannelCutRecord(t *testing.T) {
	_, recs, err := feed(t, "out"+rec("exit", "0")[:len(rec("exit", "0"))-3], 0)
	if err == nil || len(recs) != 0 {
		t.Errorf("cut record: err %v, records %v", err, recs)
	}
}

func TestChannelLargeOutput(t *testing.T) {
	body := strings.Repeat("line of output\n", 10000)
	out, recs, err := feed(t, rec("start", "")+body+rec("exit", "0"), 4096)
	if err != nil || out != body || len(recs) != 2 {
		t.Errorf("large output: err %v, %d bytes, %d records", err, len(out), len(recs))
	}
}

func TestExitStatus(t *testing.T) {
	for args, want := range map[string]int{"0": 0, "3": 3, " 255 ": 255} {
		if got, err := ExitStatus(Record{"exit", args}); err != nil || got != want {
			t.Errorf("ExitStatus(%q) = %d, %v", args, got, err)
		}
	}
	for _, bad := range []string{"", "x", "-1", "256", "3abc"} {
		if _, err := ExitStatus(Record{"exit", bad}); err == nil {
			t.Errorf("ExitStatus(%q) accepted", bad)
		}
	}
}
