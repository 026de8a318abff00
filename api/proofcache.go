package api

import (
	"container/list"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/lode-pool/lode/payouts/window"
)

// A proof of a block without a proof index streams the whole window (about
// 1.5 s of CPU for a mainnet-sized one; with the index some 50 ms,
// bench/README.md), and the miner page asks for the same few proofs on
// every view: the API keeps the latest proofCacheSize proofs it built and
// builds a proof that several requests want at once only once. A window
// never changes once recorded; the key holds what the proof's money depends
// on (the root and whether the block is credited), so a block credited
// since gets a new proof.
const proofCacheSize = 256

type proofKey struct {
	hash, address, root string
	credited            bool
}

// proofCache is a small LRU of built proofs (a proof with no leaves is kept
// too: the address has no share in that window).
type proofCache struct {
	mu      sync.Mutex
	entries map[proofKey]*list.Element
	order   list.List // front: most recently used; values are *proofEntry
	flight  singleflight.Group
}

type proofEntry struct {
	key   proofKey
	proof *window.Proof
}

func (c *proofCache) get(k proofKey) (*window.Proof, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*proofEntry).proof, true
}

func (c *proofCache) put(k proofKey, p *window.Proof) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[proofKey]*list.Element)
	}
	if e, ok := c.entries[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.entries[k] = c.order.PushFront(&proofEntry{key: k, proof: p})
	for c.order.Len() > proofCacheSize {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*proofEntry).key)
	}
}

// proof returns the cached proof for k, or builds it once with build however
// many requests want it meanwhile.
func (c *proofCache) proof(k proofKey, build func() (*window.Proof, error)) (*window.Proof, error) {
	if p, ok := c.get(k); ok {
		return p, nil
	}
	v, err, _ := c.flight.Do(k.hash+"|"+k.address+"|"+k.root+"|"+boolString(k.credited), func() (any, error) {
		p, err := build()
		if err != nil {
			return nil, err
		}
		c.put(k, p)
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*window.Proof), nil
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
