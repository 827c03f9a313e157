//go:build !amd64 || race

package objects

// optimisticReads is false where hash lookups take their bucket lock: on architectures whose
// loads may be reordered (the Go memory model offers no read fence to order them), and under
// the race detector, which would report the racy reads of optimistic lookups.
const optimisticReads = false
