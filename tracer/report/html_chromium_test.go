package report_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromiumPath finds a Chromium for headless rendering, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// runChromium loads file:// page in headless Chromium with args and
// returns what it prints. Its whole process group goes at the end.
func runChromium(t *testing.T, bin, page string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir()}, append(args, "file://"+page)...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers that outlived it, if any
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes()
}

// screenshot renders page at 1400 px wide and decodes the PNG.
func screenshot(t *testing.T, bin, page string, height int) image.Image {
	t.Helper()
	shot := filepath.Join(t.TempDir(), "page.png")
	runChromium(t, bin, page, "--screenshot="+shot, "--window-size=1400,"+strconv.Itoa(height))
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img
}

// pixels summarises a screenshot: the share of pixels that are not the
// white background, how many distinct colours it has, and how many pixels
// have each of the wanted colours (within 3 per channel).
func pixels(img image.Image, want map[string][3]uint8) (inked float64, colours int, count map[string]int) {
	b := img.Bounds()
	seen := map[[3]uint8]bool{}
	count = map[string]int{}
	ink := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}
			seen[c] = true
			if c != [3]uint8{255, 255, 255} {
				ink++
			}
			for name, w := range want {
				if near(c[0], w[0]) && near(c[1], w[1]) && near(c[2], w[2]) {
					count[name]++
				}
			}
		}
	}
	return float64(ink) / float64(b.Dx()*b.Dy()), len(seen), count
}

func near(a, b uint8) bool { return a+3 >= b && b+3 >= a }

// The frame state colours of the page's CSS.
var stateColours = map[string][3]uint8{
	"SEND_REQUEST": {0xf0, 0xa2, 0x02},
	"SENDING":      {0x1f, 0x6f, 0xd0},
	"AVAILABLE":    {0xcf, 0xe9, 0xc6},
}

// TestHTMLInChromium renders a real trace's page in headless Chromium: the
// screenshot must show the timeline's coloured state bars (far more of
// each colour than the legend has), and the DOM Chromium built must hold
// every frame row and every SVG shape the page has.
func TestHTMLInChromium(t *testing.T) {
	bin := chromiumPath(t)
	rep := replay(t, "sndbuf-blocking")
	raw, _ := htmlOf(t, rep)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	blank := filepath.Join(dir, "blank.html")
	if err := os.WriteFile(blank, []byte("<!DOCTYPE html><html><body></body></html>"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("screenshot", func(t *testing.T) {
		t.Parallel()
		inked, colours, count := pixels(screenshot(t, bin, page, 1600), stateColours)
		t.Logf("%.1f%% inked, %d colours, state pixels %v", inked*100, colours, count)
		if inked < 0.10 || colours < 50 {
			t.Errorf("page looks blank: %.1f%% of pixels inked, %d colours", inked*100, colours)
		}
		for name := range stateColours {
			if count[name] < 20000 { // a legend swatch is 264 pixels
				t.Errorf("%s bars: %d pixels of their colour, want the timeline's", name, count[name])
			}
		}
	})
	t.Run("blank-page-is-detected", func(t *testing.T) {
		t.Parallel()
		inked, colours, count := pixels(screenshot(t, bin, blank, 400), stateColours)
		if inked >= 0.10 || colours >= 50 || count["SENDING"] > 0 {
			t.Errorf("a blank page passes the check: %.1f%% inked, %d colours, %v", inked*100, colours, count)
		}
	})
	t.Run("dom", func(t *testing.T) {
		t.Parallel()
		dom := string(runChromium(t, bin, page, "--dump-dom"))
		if n := strings.Count(dom, `class="frame-row"`); n != 32 {
			t.Errorf("Chromium's DOM has %d frame rows, want 32", n)
		}
		for _, tag := range []string{"<rect", "<path", "<g ", "<svg"} {
			if got, want := strings.Count(dom, tag), strings.Count(string(raw), tag); got != want {
				t.Errorf("Chromium's DOM has %d %s, the page %d", got, tag, want)
			}
		}
		for _, id := range []string{`id="frame-timeline"`, `id="wmem-chart"`, `id="pending-chart"`, `id="calls-chart"`} {
			if !strings.Contains(dom, id) {
				t.Errorf("Chromium's DOM has no %s", id)
			}
		}
	})
}
