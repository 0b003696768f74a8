package postgres

import (
	"sync"
)

// The record cache. A read-write transaction (Update) notes the row
// version (xmin) of every record it reads and checks, at commit, that
// none has changed since (tx.go): so it may as well read a record from a
// cache of the versions this keyfleetd saw last, without a round trip to
// PostgreSQL. A version that is no longer current, because another
// keyfleetd (or another transaction of this one) changed the record,
// fails that check, and the transaction runs again without the cache.
// The same check runs when such a transaction ends in an error instead
// of a commit, so that no error is answered from a stale record.
//
// The cache holds what the database holds: sealed records. It is filled
// by every read of a record by key, its absence included (a snapshot
// read or a list only where it holds nothing, as a snapshot may be
// older), and by every commit with the
// versions it wrote; a record this keyfleetd deletes leaves it. Snapshot
// reads (View) never read from it: what they see must be one snapshot,
// and a View is not run again. Lists never read from it.

// cacheSize bounds the cache; past it, entries go in no order.
const cacheSize = 50_000

// version is a record as read: its row version and sealed bytes, or an
// absent record (xmin "").
type version struct {
	xmin   string
	sealed []byte
}

type recordCache struct {
	mu sync.RWMutex
	m  map[rowKey]version
	// names maps a username's keyed hash to its user id: a username never
	// changes, and a user deleted since is found when the id is read.
	names map[string]string
}

func (c *recordCache) get(rk rowKey) (version, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[rk]
	return v, ok
}

func (c *recordCache) put(rk rowKey, v version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[rowKey]version{}
	}
	for k := range c.m {
		if len(c.m) < cacheSize {
			break
		}
		delete(c.m, k)
	}
	c.m[rk] = v
}

// add puts v unless the cache holds a version of the record already.
func (c *recordCache) add(rk rowKey, v version) {
	if _, ok := c.get(rk); !ok {
		c.put(rk, v)
	}
}

func (c *recordCache) drop(rk rowKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, rk)
}

func (c *recordCache) userID(nameHash []byte) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.names[string(nameHash)]
	return id, ok
}

func (c *recordCache) setUserID(nameHash []byte, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names == nil || len(c.names) >= cacheSize {
		c.names = map[string]string{}
	}
	if id == "" {
		delete(c.names, string(nameHash))
		return
	}
	c.names[string(nameHash)] = id
}
