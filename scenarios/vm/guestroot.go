package vm

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// guestRoot is everything the guest's root file system is made of.
type guestRoot struct {
	Busybox  string        // host path of a static busybox
	Applets  []string      // its applets (`busybox --list`), linked in /bin
	Init     initParams    // /init; Modules and Command are filled in here
	Command  string        // the shell command to run
	Modules  []guestModule // decompressed modules, in load order
	Binaries []string      // host executables put in /usr/local/bin
	Shares   []string      // host directories copied to the same path
}

// guestModule is one kernel module to insmod.
type guestModule struct {
	Name  string
	Data  []byte // uncompressed .ko
	Early bool   // the channel's driver (or its dependency): loaded before it is opened
}

// commandPath is where the command's script lives in the guest.
const commandPath = "/ringvm/cmd.sh"

// build assembles the initramfs.
func (g guestRoot) build() (*Initramfs, error) {
	r := NewInitramfs()
	steps := []func(*Initramfs) error{g.addBase, g.addBusybox, g.addModules, g.addBinaries, g.addShares, g.addInit}
	for _, step := range steps {
		if err := step(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (g guestRoot) addBase(r *Initramfs) error {
	dirs := []struct {
		p    string
		perm uint32
	}{
		{"/proc", 0o555}, {"/sys", 0o555}, {"/dev", 0o755}, {"/tmp", 0o1777}, {"/run", 0o755},
		{"/root", 0o700}, {"/etc", 0o755}, {"/var/tmp", 0o1777}, {"/usr/local/bin", 0o755},
		{"/sbin", 0o755}, {"/usr/sbin", 0o755}, {"/ringvm", 0o755},
	}
	for _, d := range dirs {
		if err := r.Dir(d.p, fileMode(d.perm)); err != nil {
			return err
		}
	}
	files := map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"/etc/group":  "root:x:0:\n",
	}
	for p, s := range files {
		if err := r.Bytes(p, []byte(s), 0o644); err != nil {
			return err
		}
	}
	if err := r.Symlink("/var/run", "../run"); err != nil {
		return err
	}
	if err := r.CharDev("/dev/console", 5, 1, 0o600); err != nil {
		return err
	}
	return r.CharDev("/dev/null", 1, 3, 0o666)
}

func (g guestRoot) addBusybox(r *Initramfs) error {
	if err := r.File("/bin/busybox", g.Busybox); err != nil {
		return err
	}
	for _, a := range g.Applets {
		if a == "busybox" || a == "" || strings.ContainsAny(a, "/ ") {
			continue
		}
		if err := r.Symlink("/bin/"+a, "busybox"); err != nil {
			return err
		}
		if a == "env" {
			// For "#!/usr/bin/env sh" scripts.
			if err := r.Symlink("/usr/bin/env", "/bin/busybox"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g guestRoot) addModules(r *Initramfs) error {
	for _, m := range g.Modules {
		p := path.Join("/lib/modules", g.Init.Release, m.Name+".ko")
		if err := r.Bytes(p, m.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (g guestRoot) addBinaries(r *Initramfs) error {
	for _, b := range g.Binaries {
		if err := r.File("/usr/local/bin/"+filepath.Base(b), b); err != nil {
			return err
		}
	}
	return nil
}

func (g guestRoot) addShares(r *Initramfs) error {
	for _, s := range g.Shares {
		if err := r.Tree(s); err != nil {
			return fmt.Errorf("sharing %s: %w", s, err)
		}
	}
	return nil
}

func (g guestRoot) addInit(r *Initramfs) error {
	if err := r.Bytes(commandPath, []byte(g.Command+"\n"), 0o755); err != nil {
		return err
	}
	p := g.Init
	p.Command = commandPath
	p.Modules, p.EarlyModules = nil, nil
	for _, m := range g.Modules {
		ko := path.Join("/lib/modules", p.Release, m.Name+".ko")
		if m.Early {
			p.EarlyModules = append(p.EarlyModules, ko)
		} else {
			p.Modules = append(p.Modules, ko)
		}
	}
	script, err := initScript(p)
	if err != nil {
		return err
	}
	return r.Bytes("/init", script, 0o755)
}
