//go:build !amd64

package walk

// legacySyscalls: arm64 has only the newer forms (ppoll, epoll_pwait).
var legacySyscalls = map[int]string{}
