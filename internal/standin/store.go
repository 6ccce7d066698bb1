package standin

import (
	"sync"
	"time"
)

// The radio servers ("stations") the panel hosts. The set is fixed: the API has no documented way
// to add one, and a POST naming another server is a validation error, as a dangling foreign key
// is in DRF. Stations 3 and 4 are small ones, there so that tests and the demo can scope a caller
// to one station and show that it cannot touch its neighbour.
const (
	serverMain  = 1
	serverOther = 2
	serverCity  = 3
	serverCoast = 4
)

// Servers are the IDs of the radio servers the stand-in hosts.
var Servers = []int{serverMain, serverOther, serverCity, serverCoast}

func serverExists(id int) bool { return id >= serverMain && id <= serverCoast }

// entry is one stored object, kept already encoded: objects never change after creation (the
// API modelled here has no PUT, PATCH or DELETE), so a list answer is a concatenation.
type entry struct {
	id     int
	server int
	start  int64 // schedule events only: start_ts and end_ts, for the time filter
	end    int64
	json   []byte
}

// store is the mutable part of the API: the objects POST can create. One RWMutex is enough:
// writes are rare and short, and a read holds the lock only to copy encoded bytes.
type store struct {
	mu        sync.RWMutex
	channels  []entry // by id
	playlists []entry // by id
	grid      []entry // by start_ts, then id
	lastID    struct{ channel, playlist, grid int }
}

func seedStore(now time.Time) (*store, error) {
	st := &store{}
	if err := st.seedPlaylists(); err != nil {
		return nil, err
	}
	if err := st.seedChannels(); err != nil {
		return nil, err
	}
	if err := st.seedGrid(now); err != nil {
		return nil, err
	}
	return st, nil
}

// list appends the encoded entries for which keep is true as a JSON array, under the read lock.
func (st *store) list(b []byte, entries *[]entry, keep func(*entry) bool) []byte {
	st.mu.RLock()
	defer st.mu.RUnlock()
	b = append(b, '[')
	first := true
	for i := range *entries {
		e := &(*entries)[i]
		if !keep(e) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, e.json...)
	}
	return append(b, ']')
}

// collect returns the encoded entries for which keep is true, for pagination. The byte slices are
// shared, which is safe because an entry's encoding is never modified.
func (st *store) collect(entries *[]entry, keep func(*entry) bool) [][]byte {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([][]byte, 0, len(*entries))
	for i := range *entries {
		if e := &(*entries)[i]; keep(e) {
			out = append(out, e.json)
		}
	}
	return out
}

func (st *store) playlistExists(id int) bool {
	st.mu.RLock()
	defer st.mu.RUnlock()
	for i := range st.playlists {
		if st.playlists[i].id == id {
			return true
		}
	}
	return false
}

func byServer(q query) func(*entry) bool {
	if !q.hasServer {
		return func(*entry) bool { return true }
	}
	return func(e *entry) bool { return e.server == q.server }
}
