package vm

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ringtrace/ringtrace/tracer/inputerr"
)

func TestParseConfig(t *testing.T) {
	cfg := parseConfig([]byte("#\n# CONFIG_NET_9P is not set\nCONFIG_VETH=m\nCONFIG_PACKET=y\nCONFIG_DEFAULT_NET_SCH=\"fq_codel\"\n  \n"))
	want := map[string]string{"CONFIG_VETH": "m", "CONFIG_PACKET": "y", "CONFIG_DEFAULT_NET_SCH": `"fq_codel"`}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("parseConfig = %v", cfg)
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/net/veth.ko":             "veth",
		"kernel/net/sched/sch_tbf.ko.xz":         "sch_tbf",
		"x/nf-conntrack.ko.zst":                  "nf_conntrack",
		"kernel/net/packet/af_packet_diag.ko.gz": "af_packet_diag",
		"modules.builtin":                        "",
		"veth.kofoo":                             "",
	} {
		if got := moduleName(in); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWantedModules(t *testing.T) {
	files := map[string]string{"veth": "v.ko", "sch_tbf": "t.ko", "sch_netem": "n.ko", "af_packet": "p.ko"}
	cases := []struct {
		name   string
		ms     moduleSet
		extra  []string
		want   []string
		errSub string
	}{
		{"debian config", moduleSet{Files: files, Config: map[string]string{
			"CONFIG_VETH": "m", "CONFIG_NET_SCH_TBF": "m", "CONFIG_PACKET": "y", "CONFIG_NET_SCH_FIFO": "y"}},
			nil, []string{"veth", "sch_tbf"}, ""},
		{"af_packet as a module", moduleSet{Files: files, Config: map[string]string{
			"CONFIG_VETH": "m", "CONFIG_NET_SCH_TBF": "m", "CONFIG_PACKET": "m"}},
			[]string{"sch-netem"}, []string{"veth", "sch_tbf", "af_packet", "sch_netem"}, ""},
		{"veth built in", moduleSet{Files: files, Config: map[string]string{"CONFIG_VETH": "y", "CONFIG_NET_SCH_TBF": "m"}},
			nil, []string{"sch_tbf"}, ""},
		{"no veth", moduleSet{Files: files, Config: map[string]string{"CONFIG_NET_SCH_TBF": "m"}},
			nil, nil, "CONFIG_VETH is not set"},
		{"=m but file missing", moduleSet{Files: map[string]string{"sch_tbf": "t.ko"}, Config: map[string]string{"CONFIG_VETH": "m", "CONFIG_NET_SCH_TBF": "m"}},
			nil, nil, "veth.ko is missing"},
		{"no config: by files", moduleSet{Files: files, Builtin: map[string]bool{}},
			nil, []string{"veth", "sch_tbf", "af_packet"}, ""},
		{"no config, built in", moduleSet{Files: map[string]string{}, Builtin: map[string]bool{"veth": true, "sch_tbf": true}},
			[]string{"veth"}, nil, ""},
		{"unknown extra", moduleSet{Files: files, Builtin: map[string]bool{}},
			[]string{"nosuch"}, nil, "neither a module nor built into"},
	}
	for _, c := range cases {
		got, err := c.ms.wanted("test", c.extra)
		if c.errSub != "" {
			if err == nil || !strings.Contains(err.Error(), c.errSub) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.errSub)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := (&moduleSet{Files: files, Builtin: map[string]bool{}}).wanted("t", []string{"nosuch"}); !inputerr.Is(err) {
		t.Errorf("unknown extra module is not an input error: %v", err)
	}
}

func TestLoadOrder(t *testing.T) {
	deps := map[string][]string{
		"virtio_console": {"virtio_ring", "virtio"},
		"virtio_ring":    {"virtio"},
		"veth":           nil,
		"a":              {"b"},
		"b":              {"a"},
	}
	f := func(n string) ([]string, error) { return deps[n], nil }
	got, err := loadOrder([]string{"veth", "virtio_console", "virtio"}, f)
	if want := []string{"veth", "virtio", "virtio_ring", "virtio_console"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("loadOrder = %v, %v; want %v", got, err, want)
	}
	if _, err := loadOrder([]string{"a"}, f); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle not reported: %v", err)
	}
}

func TestReadModuleSetAndKernelModules(t *testing.T) {
	dir := t.TempDir()
	mods := filepath.Join(dir, "lib/modules/6.9.0-1-cloud-amd64")
	must(t, os.MkdirAll(filepath.Join(mods, "kernel/drivers/net"), 0o755))
	must(t, os.MkdirAll(filepath.Join(mods, "kernel/net/sched"), 0o755))
	must(t, os.WriteFile(filepath.Join(mods, "kernel/drivers/net/veth.ko"), fakeModule(t, "depends=net_helper"), 0o644))
	must(t, os.WriteFile(filepath.Join(mods, "kernel/drivers/net/net-helper.ko"), fakeModule(t, "depends="), 0o644))
	gz := filepath.Join(mods, "kernel/net/sched/sch_tbf.ko.gz")
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write(fakeModule(t, "depends="))
	must(t, zw.Close())
	must(t, os.WriteFile(gz, zb.Bytes(), 0o644))
	must(t, os.WriteFile(filepath.Join(mods, "modules.builtin"), []byte("kernel/net/packet/af_packet.ko\n"), 0o644))
	cfg := filepath.Join(dir, "config")
	must(t, os.WriteFile(cfg, []byte("CONFIG_VETH=m\nCONFIG_NET_SCH_TBF=m\nCONFIG_PACKET=y\n"), 0o644))

	k := &Kernel{Release: "6.9.0-1-cloud-amd64", Modules: mods, Config: cfg}
	got, err := kernelModules(context.Background(), k, []string{"net-helper"}, []string{"af_packet"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || !got[0].Early || got[0].Name != "net_helper" || got[len(got)-1].Early {
		t.Errorf("early modules: %+v, want net_helper first and early, the rest not", got)
	}
	var names []string
	for _, m := range got {
		names = append(names, m.Name)
		if _, err := modinfo(m.Data); err != nil {
			t.Errorf("%s: not an uncompressed module: %v", m.Name, err)
		}
	}
	if want := []string{"net_helper", "veth", "sch_tbf"}; !reflect.DeepEqual(names, want) {
		t.Errorf("modules %v, want %v", names, want)
	}
}

func TestModinfo(t *testing.T) {
	info, err := modinfo(fakeModule(t, "license=GPL", "depends=virtio,virtio_ring", "vermagic=6.1.0 SMP", "alias=a", "alias=b"))
	if err != nil {
		t.Fatal(err)
	}
	if info["depends"] != "virtio,virtio_ring" || info["alias"] != "a" || info["vermagic"] != "6.1.0 SMP" {
		t.Errorf("modinfo = %v", info)
	}
	if got := modDepends(" a, b-c ,,"); !reflect.DeepEqual(got, []string{"a", "b_c"}) {
		t.Errorf("modDepends = %v", got)
	}
	if _, err := modinfo([]byte("not elf")); err == nil {
		t.Error("non-ELF accepted")
	}
}

// fakeModule builds a minimal relocatable x86-64 ELF with a .modinfo section.
func fakeModule(t *testing.T, kv ...string) []byte {
	t.Helper()
	info := []byte(strings.Join(kv, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	infoOff := uint64(64)
	strOff := infoOff + uint64(len(info))
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7
	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: 1,
		Shoff: shOff, Ehsize: 64, Shentsize: 64, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	must(t, binary.Write(&b, binary.LittleEndian, hdr))
	b.Write(info)
	b.Write(shstr)
	b.Write(make([]byte, int(shOff)-b.Len()))
	secs := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: infoOff, Size: uint64(len(info)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	}
	must(t, binary.Write(&b, binary.LittleEndian, secs))
	return b.Bytes()
}
