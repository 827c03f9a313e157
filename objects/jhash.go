package objects

import (
	"encoding/binary"
	"math/bits"
)

// Bob Jenkins' lookup3 hash as the kernel has it (include/linux/jhash.h). Maps use it to pick
// buckets, so with BPF_F_ZERO_SEED our iteration order is the kernel's.

const jhashInitval = 0xdeadbeef

func jhashMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

func jhashFinal(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// jhash is include/linux/jhash.h:jhash over arbitrary bytes.
func jhash(k []byte, initval uint32) uint32 {
	length := uint32(len(k))
	a := jhashInitval + length + initval
	b, c := a, a
	for len(k) > 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = jhashMix(a, b, c)
		k = k[12:]
	}
	switch len(k) {
	case 0:
		return c
	case 12:
		c += uint32(k[11]) << 24
		fallthrough
	case 11:
		c += uint32(k[10]) << 16
		fallthrough
	case 10:
		c += uint32(k[9]) << 8
		fallthrough
	case 9:
		c += uint32(k[8])
		fallthrough
	case 8:
		b += uint32(k[7]) << 24
		fallthrough
	case 7:
		b += uint32(k[6]) << 16
		fallthrough
	case 6:
		b += uint32(k[5]) << 8
		fallthrough
	case 5:
		b += uint32(k[4])
		fallthrough
	case 4:
		a += uint32(k[3]) << 24
		fallthrough
	case 3:
		a += uint32(k[2]) << 16
		fallthrough
	case 2:
		a += uint32(k[1]) << 8
		fallthrough
	case 1:
		a += uint32(k[0])
	}
	return jhashFinal(a, b, c)
}

// jhash2 is include/linux/jhash.h:jhash2 over len(k)/4 host-endian u32 words.
func jhash2(k []byte, initval uint32) uint32 {
	length := uint32(len(k) / 4)
	a := jhashInitval + length<<2 + initval
	b, c := a, a
	for len(k) > 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = jhashMix(a, b, c)
		k = k[12:]
	}
	switch len(k) {
	case 0:
		return c
	case 12:
		c += binary.LittleEndian.Uint32(k[8:])
		fallthrough
	case 8:
		b += binary.LittleEndian.Uint32(k[4:])
		fallthrough
	case 4:
		a += binary.LittleEndian.Uint32(k)
	}
	return jhashFinal(a, b, c)
}

// JHash is the kernel's jhash over b with seed, exported for the bloom filter's tests and
// the program-side helpers.
func JHash(b []byte, seed uint32) uint32 { return jhash(b, seed) }

// htabHash is kernel/bpf/hashtab.c:htab_map_hash.
func htabHash(key []byte, seed uint32) uint32 {
	if len(key) == 4 {
		// jhash2 of one word, inlined for the common u32 key.
		a := jhashInitval + 4 + seed
		return jhashFinal(a+binary.LittleEndian.Uint32(key), a, a)
	}
	if len(key)%4 == 0 {
		return jhash2(key, seed)
	}
	return jhash(key, seed)
}
