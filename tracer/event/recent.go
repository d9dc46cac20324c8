package event

// Recent remembers something about the sockets that closed lately (their
// label): a late event of a closed socket (a completion after the close)
// still finds it, and memory stays bounded however many sockets a long
// trace sees come and go. It keeps two generations of at most N entries
// each; the zero value is ready and keeps DefaultRecent per generation.
type Recent[K comparable, V any] struct {
	N        int
	cur, old map[K]V
}

// DefaultRecent is how many closed sockets a generation of Recent keeps.
const DefaultRecent = 1024

// Put remembers v for k, dropping the older generation when the current
// one is full.
func (r *Recent[K, V]) Put(k K, v V) {
	n := r.N
	if n <= 0 {
		n = DefaultRecent
	}
	if len(r.cur) >= n {
		r.old, r.cur = r.cur, nil
	}
	if r.cur == nil {
		r.cur = map[K]V{}
	}
	r.cur[k] = v
}

// Get is what was put for k, if it is still remembered.
func (r *Recent[K, V]) Get(k K) (V, bool) {
	if v, ok := r.cur[k]; ok {
		return v, true
	}
	v, ok := r.old[k]
	return v, ok
}

// Len is how many entries are remembered.
func (r *Recent[K, V]) Len() int { return len(r.cur) + len(r.old) }
