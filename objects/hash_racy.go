//go:build amd64 && !race

package objects

// optimisticReads lets hash lookups read buckets without taking their lock (htabLock). It
// relies on amd64 keeping loads in program order (TSO), so that the plain loads between the
// two atomic loads of the sequence count are not seen to move past the second, and on aligned
// 32-bit stores never being torn, so that every index a reader follows is one some writer
// stored. The race detector would see the deliberate racy reads, so race builds take the lock.
const optimisticReads = true
