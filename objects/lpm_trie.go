package objects

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"

	"golang.org/x/sys/unix"
)

// BPF_MAP_TYPE_LPM_TRIE (kernel/bpf/lpm_trie.c).
//
// A key is struct bpf_lpm_trie_key_u8: a host-endian u32 prefixlen followed by key_size-4
// data bytes in network order (data[0] holds the most significant bits). The trie is the
// kernel's: a binary tree in which every node stores a prefix, real nodes carry a value and
// intermediate ("IM") nodes exist only to split two subtrees; every IM node has exactly two
// children. Walks therefore visit the same nodes in the same order as the kernel's, which
// makes get_next_key's post-order identical.

const (
	lpmDataSizeMin = 1
	lpmDataSizeMax = 256
	lpmKeySizeMin  = 4 + lpmDataSizeMin
	lpmKeySizeMax  = 4 + lpmDataSizeMax
	lpmNodeSize    = 40 // sizeof(struct lpm_trie_node) on x86_64
	lpmValSizeMax  = kmallocMaxSize - lpmDataSizeMax - lpmNodeSize
	lpmCreateFlags = FNoPrealloc | FNumaNode | accessFlagsMask
)

var (
	errLPMPrefix = fmt.Errorf("prefixlen larger than the key's data bits: %w", unix.EINVAL)
	errLPMFull   = fmt.Errorf("lpm trie is full: %w", unix.ENOSPC)
)

func init() {
	registerMapType(MapTypeLPMTrie, &mapType{allocAttrCheck: trieAllocCheck, alloc: trieAlloc, memUsage: trieMemUsage})
}

// trieMemUsage charges max_entries real nodes plus as many intermediate nodes (the worst
// case). The kernel charges nodes as they are allocated (kernel/bpf/lpm_trie.c:trie_mem_usage);
// charging the maximum up front keeps a growing trie inside the memory budget.
func trieMemUsage(m *Map) uint64 {
	dataSize := uint64(m.KeySize) - 4
	if m.KeySize < 4 {
		dataSize = 0
	}
	node := uint64(lpmNodeSize) + dataSize
	return 256 + uint64(m.MaxEntries)*(2*node+uint64(m.ValueSize))
}

// lpmNode is struct lpm_trie_node. buf holds data (dataSize bytes) followed, for real nodes,
// by the value.
type lpmNode struct {
	child     [2]*lpmNode
	prefixlen uint32
	im        bool // LPM_TREE_NODE_FLAG_IM
	buf       []byte
}

// lpmTrie is struct lpm_trie. One RWMutex guards the tree: lookups and get_next_key share it,
// updates and deletes take it exclusively (the kernel uses RCU readers and a spinlock).
type lpmTrie struct {
	mu           sync.RWMutex
	root         *lpmNode
	nEntries     uint32
	maxEntries   uint32
	dataSize     int
	valueSize    int
	maxPrefixlen uint32
}

// trieAllocCheck is the attribute check of kernel/bpf/lpm_trie.c:trie_alloc. The trie has no
// map_alloc_check, so every attribute error is EINVAL from map_alloc, after the permission
// checks.
func trieAllocCheck(attr *MapAttr) error {
	if attr.MaxEntries == 0 ||
		attr.MapFlags&FNoPrealloc == 0 ||
		attr.MapFlags&^lpmCreateFlags != 0 ||
		!flagsAccessOK(attr.MapFlags) ||
		attr.KeySize < lpmKeySizeMin || attr.KeySize > lpmKeySizeMax ||
		attr.ValueSize < 1 || attr.ValueSize > lpmValSizeMax {
		return fmt.Errorf("lpm_trie needs BPF_F_NO_PREALLOC, key_size %d..%d, value_size >= 1 and max_entries > 0: %w",
			lpmKeySizeMin, lpmKeySizeMax, unix.EINVAL)
	}
	return nil
}

// trieAlloc is kernel/bpf/lpm_trie.c:trie_alloc (after trieAllocCheck).
func trieAlloc(m *Map, attr *MapAttr) (mapOps, error) {
	t := &lpmTrie{
		maxEntries: attr.MaxEntries,
		dataSize:   int(attr.KeySize) - 4,
		valueSize:  int(attr.ValueSize),
	}
	t.maxPrefixlen = uint32(t.dataSize) * 8
	return t, nil
}

func (n *lpmNode) data(t *lpmTrie) []byte  { return n.buf[:t.dataSize] }
func (n *lpmNode) value(t *lpmTrie) []byte { return n.buf[t.dataSize:] }

// extractBit is kernel/bpf/lpm_trie.c:extract_bit: bit index of data, MSB first.
func extractBit(data []byte, index uint32) int {
	return int(data[index/8]>>(7-index%8)) & 1
}

// longestPrefixMatch is kernel/bpf/lpm_trie.c:longest_prefix_match: the number of leading
// bits node's data and the key's data share, capped at min(node.prefixlen, key prefixlen).
func longestPrefixMatch(nodeData []byte, nodePrefix uint32, keyData []byte, keyPrefix uint32) uint32 {
	limit := nodePrefix
	if keyPrefix < limit {
		limit = keyPrefix
	}
	var n uint32
	i := 0
	for ; i+8 <= len(keyData) && n < limit; i += 8 {
		diff := binary.BigEndian.Uint64(nodeData[i:]) ^ binary.BigEndian.Uint64(keyData[i:])
		if diff != 0 {
			n += uint32(bits.LeadingZeros64(diff))
			return min(n, limit)
		}
		n += 64
	}
	for ; i < len(keyData) && n < limit; i++ {
		diff := nodeData[i] ^ keyData[i]
		if diff != 0 {
			n += uint32(bits.LeadingZeros8(diff))
			return min(n, limit)
		}
		n += 8
	}
	return min(n, limit)
}

func splitLPMKey(key []byte) (prefixlen uint32, data []byte) {
	return binary.LittleEndian.Uint32(key), key[4:]
}

// lookup is kernel/bpf/lpm_trie.c:trie_lookup_elem: the value of the longest stored prefix
// that matches the key's first prefixlen bits.
func (t *lpmTrie) lookup(key, value []byte) error {
	prefixlen, data := splitLPMKey(key)
	if prefixlen > t.maxPrefixlen {
		return errNoEnt
	}
	t.mu.RLock()
	var found *lpmNode
	for node := t.root; node != nil; {
		matchlen := longestPrefixMatch(node.data(t), node.prefixlen, data, prefixlen)
		if matchlen == t.maxPrefixlen {
			found = node
			break
		}
		if matchlen < node.prefixlen {
			break
		}
		if !node.im {
			found = node
		}
		node = node.child[extractBit(data, node.prefixlen)]
	}
	if found == nil {
		t.mu.RUnlock()
		return errNoEnt
	}
	copy(value, found.value(t))
	t.mu.RUnlock()
	return nil
}

// checkAdd is kernel/bpf/lpm_trie.c:trie_check_add_elem. t.mu must be held for writing.
func (t *lpmTrie) checkAdd(flags uint64) error {
	if flags == Exist {
		return errExistNot
	}
	if t.nEntries == t.maxEntries {
		return errLPMFull
	}
	t.nEntries++
	return nil
}

// update is kernel/bpf/lpm_trie.c:trie_update_elem: flags (> BPF_EXIST: EINVAL), prefixlen,
// then the walk; an existing exact prefix is replaced (NOEXIST: EEXIST), a new one needs room
// (ENOSPC, not E2BIG) and no BPF_EXIST (ENOENT). The data bits beyond prefixlen are stored as
// given, as the kernel stores them (get_next_key returns them).
func (t *lpmTrie) update(key, value []byte, flags uint64) error {
	if flags > Exist {
		return errBadFlags
	}
	prefixlen, data := splitLPMKey(key)
	if prefixlen > t.maxPrefixlen {
		return errLPMPrefix
	}
	newNode := &lpmNode{prefixlen: prefixlen, buf: make([]byte, t.dataSize+t.valueSize)}
	copy(newNode.buf, data)
	copy(newNode.buf[t.dataSize:], value)

	t.mu.Lock()
	defer t.mu.Unlock()
	slot := &t.root
	var node *lpmNode
	var matchlen uint32
	for {
		node = *slot
		if node == nil {
			break
		}
		matchlen = longestPrefixMatch(node.data(t), node.prefixlen, data, prefixlen)
		if node.prefixlen != matchlen || node.prefixlen == prefixlen {
			break
		}
		slot = &node.child[extractBit(data, node.prefixlen)]
	}
	if node == nil {
		if err := t.checkAdd(flags); err != nil {
			return err
		}
		*slot = newNode
		return nil
	}
	if node.prefixlen == matchlen {
		if !node.im {
			if flags == NoExist {
				return errExist
			}
		} else if err := t.checkAdd(flags); err != nil {
			return err
		}
		newNode.child = node.child
		*slot = newNode
		return nil
	}
	if err := t.checkAdd(flags); err != nil {
		return err
	}
	if matchlen == prefixlen {
		// The new prefix covers node: it becomes node's parent.
		newNode.child[extractBit(node.data(t), matchlen)] = node
		*slot = newNode
		return nil
	}
	im := &lpmNode{prefixlen: matchlen, im: true, buf: make([]byte, t.dataSize)}
	copy(im.buf, node.data(t))
	if extractBit(data, matchlen) == 1 {
		im.child = [2]*lpmNode{node, newNode}
	} else {
		im.child = [2]*lpmNode{newNode, node}
	}
	*slot = im
	return nil
}

// delete is kernel/bpf/lpm_trie.c:trie_delete_elem: only an exact (prefixlen, prefix) match
// of a real node is removed; intermediate nodes left with one child are folded away.
func (t *lpmTrie) delete(key []byte) error {
	prefixlen, data := splitLPMKey(key)
	if prefixlen > t.maxPrefixlen {
		return errLPMPrefix
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	trim := &t.root
	trim2 := trim
	var parent, node *lpmNode
	var matchlen uint32
	for {
		node = *trim
		if node == nil {
			break
		}
		matchlen = longestPrefixMatch(node.data(t), node.prefixlen, data, prefixlen)
		if node.prefixlen != matchlen || node.prefixlen == prefixlen {
			break
		}
		parent = node
		trim2 = trim
		trim = &node.child[extractBit(data, node.prefixlen)]
	}
	if node == nil || node.prefixlen != prefixlen || node.prefixlen != matchlen || node.im {
		return errNoEnt
	}
	t.nEntries--
	if node.child[0] != nil && node.child[1] != nil {
		// Keep the node as an intermediate one; drop its value.
		node.im = true
		node.buf = node.buf[:t.dataSize:t.dataSize]
		return nil
	}
	if parent != nil && parent.im && node.child[0] == nil && node.child[1] == nil {
		if node == parent.child[0] {
			*trim2 = parent.child[1]
		} else {
			*trim2 = parent.child[0]
		}
		return nil
	}
	switch {
	case node.child[0] != nil:
		*trim = node.child[0]
	case node.child[1] != nil:
		*trim = node.child[1]
	default:
		*trim = nil
	}
	return nil
}

// lookupAndDelete: kernel/bpf/syscall.c:map_lookup_and_delete_elem supports only queue, stack
// and the hash maps; every other type gets ENOTSUPP.
func (t *lpmTrie) lookupAndDelete(key, value []byte, flags uint64) error { return errNotSupp }

// leftmost is the find_leftmost walk of kernel/bpf/lpm_trie.c:trie_get_next_key: the first real
// node of root's subtree in post-order (deepest first, child 0 before child 1).
func leftmost(root *lpmNode) *lpmNode {
	var next *lpmNode
	for node := root; node != nil; {
		if node.im {
			node = node.child[0]
			continue
		}
		next = node
		node = node.child[0]
		if node == nil {
			node = next.child[1]
		}
	}
	return next
}

// getNextKey is kernel/bpf/lpm_trie.c:trie_get_next_key: post-order, so more specific prefixes
// come before the prefixes covering them and the 0-bit subtree before the 1-bit one. A NULL,
// invalid (prefixlen too large) or absent key restarts at the first node; after the last one,
// or on an empty trie, ENOENT.
func (t *lpmTrie) getNextKey(key, next []byte) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.root == nil {
		return errNoNext
	}
	var nextNode *lpmNode
	var prefixlen uint32
	var data []byte
	if key != nil {
		prefixlen, data = splitLPMKey(key)
	}
	if key == nil || prefixlen > t.maxPrefixlen {
		nextNode = leftmost(t.root)
	} else {
		var stackBuf [64]*lpmNode
		stack := stackBuf[:0]
		var node *lpmNode
		var matchlen uint32
		for node = t.root; node != nil; {
			stack = append(stack, node)
			matchlen = longestPrefixMatch(node.data(t), node.prefixlen, data, prefixlen)
			if node.prefixlen != matchlen || node.prefixlen == prefixlen {
				break
			}
			node = node.child[extractBit(data, node.prefixlen)]
		}
		if node == nil || node.prefixlen != matchlen || node.im {
			nextNode = leftmost(t.root)
		} else {
			// The exact node is on top of the stack: find its post-order successor.
			node = stack[len(stack)-1]
			for sp := len(stack) - 1; sp > 0 && nextNode == nil; sp-- {
				parent := stack[sp-1]
				if parent.child[0] == node && parent.child[1] != nil {
					nextNode = leftmost(parent.child[1])
					break
				}
				if !parent.im {
					nextNode = parent
					break
				}
				node = parent
			}
			if nextNode == nil {
				return errNoNext
			}
		}
	}
	binary.LittleEndian.PutUint32(next, nextNode.prefixlen)
	copy(next[4:], nextNode.data(t))
	return nil
}

func (t *lpmTrie) count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return int(t.nEntries)
}

func (t *lpmTrie) free() {}
