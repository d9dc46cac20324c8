package walk

import "golang.org/x/sys/unix"

// legacySyscalls names the blocking calls amd64 still has beside their
// newer forms (ppoll, epoll_pwait), which every architecture has.
var legacySyscalls = map[int]string{unix.SYS_POLL: "poll", unix.SYS_EPOLL_WAIT: "epoll_wait"}
