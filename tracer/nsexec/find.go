package nsexec

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Where lists the network namespaces holding an interface called ifname:
// named ones (/run/netns) by name, the current one as "" and any other a
// process is in (containers) as "pid N". It looks, it does not guess: a
// namespace it cannot open is skipped.
func Where(ifname string) []string {
	seen := map[uint64]bool{}
	var found []string
	check := func(ns netns.NsHandle, label string) {
		defer ns.Close()
		var st unix.Stat_t
		if unix.Fstat(int(ns), &st) != nil || seen[st.Ino] {
			return
		}
		seen[st.Ino] = true
		h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		if err != nil {
			return
		}
		defer h.Close()
		if _, err := h.LinkByName(ifname); err == nil {
			found = append(found, label)
		}
	}
	if ns, err := netns.Get(); err == nil {
		check(ns, "")
	}
	names, _ := filepath.Glob("/run/netns/*")
	sort.Strings(names)
	for _, p := range names {
		if ns, err := netns.GetFromPath(p); err == nil {
			check(ns, filepath.Base(p))
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if ns, err := netns.GetFromPid(pid); err == nil {
			check(ns, "pid "+d.Name())
		}
	}
	return found
}
