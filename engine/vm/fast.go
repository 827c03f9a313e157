package vm

import (
	"encoding/binary"
	"math/bits"
)

// fast is the hot loop of kernel/bpf/core.c:___bpf_prog_run's equivalent. It executes ALU, jump, ld_imm64 and in-bounds load and
// store instructions, and returns at the first instruction it does not
// handle — calls, exits, atomics, packet loads, a load or store that fails
// its bounds check, or an exhausted budget — without executing it, with the
// budget left for it. It makes no calls, so the Go compiler keeps its state
// in registers.
func fast(regions []Region, rp *[16]uint64, code []dinsn, pc int, left uint64) (int, uint64) {
	// A local copy of the registers: addressed off the stack pointer, no nil
	// checks.
	r := *rp
	for {
		if left == 0 {
			break
		}
		left--
		in := &code[pc]
		switch in.op {
		// ALU64
		case opAdd64K:
			r[in.dst&15] += uint64(in.imm)
		case opAdd64X:
			r[in.dst&15] += r[in.src&15]
		case opSub64K:
			r[in.dst&15] -= uint64(in.imm)
		case opSub64X:
			r[in.dst&15] -= r[in.src&15]
		case opMul64K:
			r[in.dst&15] *= uint64(in.imm)
		case opMul64X:
			r[in.dst&15] *= r[in.src&15]
		case opDiv64K:
			if in.imm != 0 {
				r[in.dst&15] /= uint64(in.imm)
			} else {
				r[in.dst&15] = 0
			}
		case opDiv64X:
			if s := r[in.src&15]; s != 0 {
				r[in.dst&15] /= s
			} else {
				r[in.dst&15] = 0
			}
		case opSdiv64K:
			if in.imm != 0 {
				r[in.dst&15] = uint64(int64(r[in.dst&15]) / in.imm)
			} else {
				r[in.dst&15] = 0
			}
		case opSdiv64X:
			if s := int64(r[in.src&15]); s != 0 {
				r[in.dst&15] = uint64(int64(r[in.dst&15]) / s)
			} else {
				r[in.dst&15] = 0
			}
		case opMod64K:
			if in.imm != 0 {
				r[in.dst&15] %= uint64(in.imm)
			}
		case opMod64X:
			if s := r[in.src&15]; s != 0 {
				r[in.dst&15] %= s
			}
		case opSmod64K:
			if in.imm != 0 {
				r[in.dst&15] = uint64(int64(r[in.dst&15]) % in.imm)
			}
		case opSmod64X:
			if s := int64(r[in.src&15]); s != 0 {
				r[in.dst&15] = uint64(int64(r[in.dst&15]) % s)
			}
		case opOr64K:
			r[in.dst&15] |= uint64(in.imm)
		case opOr64X:
			r[in.dst&15] |= r[in.src&15]
		case opAnd64K:
			r[in.dst&15] &= uint64(in.imm)
		case opAnd64X:
			r[in.dst&15] &= r[in.src&15]
		case opXor64K:
			r[in.dst&15] ^= uint64(in.imm)
		case opXor64X:
			r[in.dst&15] ^= r[in.src&15]
		case opLsh64K:
			r[in.dst&15] <<= uint64(in.imm) & 63
		case opLsh64X:
			r[in.dst&15] <<= r[in.src&15] & 63
		case opRsh64K:
			r[in.dst&15] >>= uint64(in.imm) & 63
		case opRsh64X:
			r[in.dst&15] >>= r[in.src&15] & 63
		case opArsh64K:
			r[in.dst&15] = uint64(int64(r[in.dst&15]) >> (uint64(in.imm) & 63))
		case opArsh64X:
			r[in.dst&15] = uint64(int64(r[in.dst&15]) >> (r[in.src&15] & 63))
		case opMov64K:
			r[in.dst&15] = uint64(in.imm)
		case opMov64X:
			r[in.dst&15] = r[in.src&15]
		case opMovsx8to64:
			r[in.dst&15] = uint64(int64(int8(r[in.src&15])))
		case opMovsx16to64:
			r[in.dst&15] = uint64(int64(int16(r[in.src&15])))
		case opMovsx32to64:
			r[in.dst&15] = uint64(int64(int32(r[in.src&15])))
		case opNeg64:
			r[in.dst&15] = -r[in.dst&15]

		// ALU32: results are zero-extended to 64 bits.
		case opAdd32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) + uint32(in.imm))
		case opAdd32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) + uint32(r[in.src&15]))
		case opSub32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) - uint32(in.imm))
		case opSub32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) - uint32(r[in.src&15]))
		case opMul32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) * uint32(in.imm))
		case opMul32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) * uint32(r[in.src&15]))
		case opDiv32K:
			if s := uint32(in.imm); s != 0 {
				r[in.dst&15] = uint64(uint32(r[in.dst&15]) / s)
			} else {
				r[in.dst&15] = 0
			}
		case opDiv32X:
			if s := uint32(r[in.src&15]); s != 0 {
				r[in.dst&15] = uint64(uint32(r[in.dst&15]) / s)
			} else {
				r[in.dst&15] = 0
			}
		case opSdiv32K:
			if s := int32(in.imm); s != 0 {
				r[in.dst&15] = uint64(uint32(int32(r[in.dst&15]) / s))
			} else {
				r[in.dst&15] = 0
			}
		case opSdiv32X:
			if s := int32(r[in.src&15]); s != 0 {
				r[in.dst&15] = uint64(uint32(int32(r[in.dst&15]) / s))
			} else {
				r[in.dst&15] = 0
			}
		case opMod32K:
			if s := uint32(in.imm); s != 0 {
				r[in.dst&15] = uint64(uint32(r[in.dst&15]) % s)
			} else {
				r[in.dst&15] = uint64(uint32(r[in.dst&15]))
			}
		case opMod32X:
			if s := uint32(r[in.src&15]); s != 0 {
				r[in.dst&15] = uint64(uint32(r[in.dst&15]) % s)
			} else {
				r[in.dst&15] = uint64(uint32(r[in.dst&15]))
			}
		case opSmod32K:
			if s := int32(in.imm); s != 0 {
				r[in.dst&15] = uint64(uint32(int32(r[in.dst&15]) % s))
			} else {
				r[in.dst&15] = uint64(uint32(r[in.dst&15]))
			}
		case opSmod32X:
			if s := int32(r[in.src&15]); s != 0 {
				r[in.dst&15] = uint64(uint32(int32(r[in.dst&15]) % s))
			} else {
				r[in.dst&15] = uint64(uint32(r[in.dst&15]))
			}
		case opOr32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) | uint32(in.imm))
		case opOr32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) | uint32(r[in.src&15]))
		case opAnd32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) & uint32(in.imm))
		case opAnd32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) & uint32(r[in.src&15]))
		case opXor32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) ^ uint32(in.imm))
		case opXor32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) ^ uint32(r[in.src&15]))
		case opLsh32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) << (uint32(in.imm) & 31))
		case opLsh32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) << (uint32(r[in.src&15]) & 31))
		case opRsh32K:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) >> (uint32(in.imm) & 31))
		case opRsh32X:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]) >> (uint32(r[in.src&15]) & 31))
		case opArsh32K:
			r[in.dst&15] = uint64(uint32(int32(r[in.dst&15]) >> (uint32(in.imm) & 31)))
		case opArsh32X:
			r[in.dst&15] = uint64(uint32(int32(r[in.dst&15]) >> (uint32(r[in.src&15]) & 31)))
		case opMov32K:
			r[in.dst&15] = uint64(uint32(in.imm))
		case opMov32X:
			r[in.dst&15] = uint64(uint32(r[in.src&15]))
		case opMovsx8to32:
			r[in.dst&15] = uint64(uint32(int32(int8(r[in.src&15]))))
		case opMovsx16to32:
			r[in.dst&15] = uint64(uint32(int32(int16(r[in.src&15]))))
		case opNeg32:
			r[in.dst&15] = uint64(-uint32(r[in.dst&15]))

		case opZext16:
			r[in.dst&15] = uint64(uint16(r[in.dst&15]))
		case opZext32:
			r[in.dst&15] = uint64(uint32(r[in.dst&15]))
		case opNop:
		case opBswap16:
			r[in.dst&15] = uint64(bits.ReverseBytes16(uint16(r[in.dst&15])))
		case opBswap32:
			r[in.dst&15] = uint64(bits.ReverseBytes32(uint32(r[in.dst&15])))
		case opBswap64:
			r[in.dst&15] = bits.ReverseBytes64(r[in.dst&15])

		// JMP: off holds the absolute target.
		case opJa:
			pc = int(in.off)
			continue
		case opJeq64K:
			if r[in.dst&15] == uint64(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJeq64X:
			if r[in.dst&15] == r[in.src&15] {
				pc = int(in.off)
				continue
			}
		case opJgt64K:
			if r[in.dst&15] > uint64(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJgt64X:
			if r[in.dst&15] > r[in.src&15] {
				pc = int(in.off)
				continue
			}
		case opJge64K:
			if r[in.dst&15] >= uint64(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJge64X:
			if r[in.dst&15] >= r[in.src&15] {
				pc = int(in.off)
				continue
			}
		case opJset64K:
			if r[in.dst&15]&uint64(in.imm) != 0 {
				pc = int(in.off)
				continue
			}
		case opJset64X:
			if r[in.dst&15]&r[in.src&15] != 0 {
				pc = int(in.off)
				continue
			}
		case opJne64K:
			if r[in.dst&15] != uint64(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJne64X:
			if r[in.dst&15] != r[in.src&15] {
				pc = int(in.off)
				continue
			}
		case opJsgt64K:
			if int64(r[in.dst&15]) > in.imm {
				pc = int(in.off)
				continue
			}
		case opJsgt64X:
			if int64(r[in.dst&15]) > int64(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJsge64K:
			if int64(r[in.dst&15]) >= in.imm {
				pc = int(in.off)
				continue
			}
		case opJsge64X:
			if int64(r[in.dst&15]) >= int64(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJlt64K:
			if r[in.dst&15] < uint64(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJlt64X:
			if r[in.dst&15] < r[in.src&15] {
				pc = int(in.off)
				continue
			}
		case opJle64K:
			if r[in.dst&15] <= uint64(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJle64X:
			if r[in.dst&15] <= r[in.src&15] {
				pc = int(in.off)
				continue
			}
		case opJslt64K:
			if int64(r[in.dst&15]) < in.imm {
				pc = int(in.off)
				continue
			}
		case opJslt64X:
			if int64(r[in.dst&15]) < int64(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJsle64K:
			if int64(r[in.dst&15]) <= in.imm {
				pc = int(in.off)
				continue
			}
		case opJsle64X:
			if int64(r[in.dst&15]) <= int64(r[in.src&15]) {
				pc = int(in.off)
				continue
			}

		// JMP32: compare the low 32 bits.
		case opJeq32K:
			if uint32(r[in.dst&15]) == uint32(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJeq32X:
			if uint32(r[in.dst&15]) == uint32(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJgt32K:
			if uint32(r[in.dst&15]) > uint32(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJgt32X:
			if uint32(r[in.dst&15]) > uint32(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJge32K:
			if uint32(r[in.dst&15]) >= uint32(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJge32X:
			if uint32(r[in.dst&15]) >= uint32(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJset32K:
			if uint32(r[in.dst&15])&uint32(in.imm) != 0 {
				pc = int(in.off)
				continue
			}
		case opJset32X:
			if uint32(r[in.dst&15])&uint32(r[in.src&15]) != 0 {
				pc = int(in.off)
				continue
			}
		case opJne32K:
			if uint32(r[in.dst&15]) != uint32(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJne32X:
			if uint32(r[in.dst&15]) != uint32(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJsgt32K:
			if int32(r[in.dst&15]) > int32(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJsgt32X:
			if int32(r[in.dst&15]) > int32(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJsge32K:
			if int32(r[in.dst&15]) >= int32(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJsge32X:
			if int32(r[in.dst&15]) >= int32(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJlt32K:
			if uint32(r[in.dst&15]) < uint32(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJlt32X:
			if uint32(r[in.dst&15]) < uint32(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJle32K:
			if uint32(r[in.dst&15]) <= uint32(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJle32X:
			if uint32(r[in.dst&15]) <= uint32(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJslt32K:
			if int32(r[in.dst&15]) < int32(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJslt32X:
			if int32(r[in.dst&15]) < int32(r[in.src&15]) {
				pc = int(in.off)
				continue
			}
		case opJsle32K:
			if int32(r[in.dst&15]) <= int32(in.imm) {
				pc = int(in.off)
				continue
			}
		case opJsle32X:
			if int32(r[in.dst&15]) <= int32(r[in.src&15]) {
				pc = int(in.off)
				continue
			}

		// Loads and stores: the address is decoded to (region, offset) and
		// bounds checked; a failed check leaves the instruction to exec,
		// which reports the fault.
		case opLdx8:
			a := r[in.src&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			d := regions[ri].Data
			o := a & offMask
			if o+1 > uint64(len(d)) {
				left++
				goto out
			}
			r[in.dst&15] = uint64(d[o])
		case opLdx16:
			a := r[in.src&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			d := regions[ri].Data
			o := a & offMask
			if o+2 > uint64(len(d)) {
				left++
				goto out
			}
			r[in.dst&15] = uint64(binary.LittleEndian.Uint16(d[o:]))
		case opLdx32:
			a := r[in.src&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			d := regions[ri].Data
			o := a & offMask
			if o+4 > uint64(len(d)) {
				left++
				goto out
			}
			r[in.dst&15] = uint64(binary.LittleEndian.Uint32(d[o:]))
		case opLdx64:
			a := r[in.src&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			d := regions[ri].Data
			o := a & offMask
			if o+8 > uint64(len(d)) {
				left++
				goto out
			}
			r[in.dst&15] = binary.LittleEndian.Uint64(d[o:])
		case opLdxs8:
			a := r[in.src&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			d := regions[ri].Data
			o := a & offMask
			if o+1 > uint64(len(d)) {
				left++
				goto out
			}
			r[in.dst&15] = uint64(int64(int8(d[o])))
		case opLdxs16:
			a := r[in.src&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			d := regions[ri].Data
			o := a & offMask
			if o+2 > uint64(len(d)) {
				left++
				goto out
			}
			r[in.dst&15] = uint64(int64(int16(binary.LittleEndian.Uint16(d[o:]))))
		case opLdxs32:
			a := r[in.src&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			d := regions[ri].Data
			o := a & offMask
			if o+4 > uint64(len(d)) {
				left++
				goto out
			}
			r[in.dst&15] = uint64(int64(int32(binary.LittleEndian.Uint32(d[o:]))))
		case opSt8:
			a := r[in.dst&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			reg := &regions[ri]
			o := a & offMask
			if o+1 > uint64(len(reg.Data)) || !reg.Writable {
				left++
				goto out
			}
			reg.Data[o] = uint8(in.imm)
		case opStx8:
			a := r[in.dst&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			reg := &regions[ri]
			o := a & offMask
			if o+1 > uint64(len(reg.Data)) || !reg.Writable {
				left++
				goto out
			}
			reg.Data[o] = uint8(r[in.src&15])
		case opSt16:
			a := r[in.dst&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			reg := &regions[ri]
			o := a & offMask
			if o+2 > uint64(len(reg.Data)) || !reg.Writable {
				left++
				goto out
			}
			binary.LittleEndian.PutUint16(reg.Data[o:], uint16(in.imm))
		case opStx16:
			a := r[in.dst&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			reg := &regions[ri]
			o := a & offMask
			if o+2 > uint64(len(reg.Data)) || !reg.Writable {
				left++
				goto out
			}
			binary.LittleEndian.PutUint16(reg.Data[o:], uint16(r[in.src&15]))
		case opSt32:
			a := r[in.dst&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			reg := &regions[ri]
			o := a & offMask
			if o+4 > uint64(len(reg.Data)) || !reg.Writable {
				left++
				goto out
			}
			binary.LittleEndian.PutUint32(reg.Data[o:], uint32(in.imm))
		case opStx32:
			a := r[in.dst&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			reg := &regions[ri]
			o := a & offMask
			if o+4 > uint64(len(reg.Data)) || !reg.Writable {
				left++
				goto out
			}
			binary.LittleEndian.PutUint32(reg.Data[o:], uint32(r[in.src&15]))
		case opSt64:
			a := r[in.dst&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			reg := &regions[ri]
			o := a & offMask
			if o+8 > uint64(len(reg.Data)) || !reg.Writable {
				left++
				goto out
			}
			binary.LittleEndian.PutUint64(reg.Data[o:], uint64(in.imm))
		case opStx64:
			a := r[in.dst&15] + uint64(in.off)
			ri := a>>regionShift - 1
			if ri >= uint64(len(regions)) {
				left++
				goto out
			}
			reg := &regions[ri]
			o := a & offMask
			if o+8 > uint64(len(reg.Data)) || !reg.Writable {
				left++
				goto out
			}
			binary.LittleEndian.PutUint64(reg.Data[o:], uint64(r[in.src&15]))
		case opLdImm64:
			r[in.dst&15] = uint64(in.imm)
			pc += 2
			continue
		case opInvalid: // keeps the jump table starting at 0
			left++
			goto out
		default:
			left++
			goto out
		}
		pc++
	}
out:
	*rp = r
	return pc, left
}
