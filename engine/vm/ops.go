package vm

// Internal, dense opcodes of the pre-decoded form. Load translates every raw
// instruction into exactly one of these so that the interpreter's switch
// compiles to a jump table and each case does one thing.
const (
	opInvalid uint8 = iota

	// ALU64
	opAdd64K
	opAdd64X
	opSub64K
	opSub64X
	opMul64K
	opMul64X
	opDiv64K
	opDiv64X
	opSdiv64K
	opSdiv64X
	opMod64K
	opMod64X
	opSmod64K
	opSmod64X
	opOr64K
	opOr64X
	opAnd64K
	opAnd64X
	opXor64K
	opXor64X
	opLsh64K
	opLsh64X
	opRsh64K
	opRsh64X
	opArsh64K
	opArsh64X
	opMov64K
	opMov64X
	opMovsx8to64
	opMovsx16to64
	opMovsx32to64
	opNeg64

	// ALU32
	opAdd32K
	opAdd32X
	opSub32K
	opSub32X
	opMul32K
	opMul32X
	opDiv32K
	opDiv32X
	opSdiv32K
	opSdiv32X
	opMod32K
	opMod32X
	opSmod32K
	opSmod32X
	opOr32K
	opOr32X
	opAnd32K
	opAnd32X
	opXor32K
	opXor32X
	opLsh32K
	opLsh32X
	opRsh32K
	opRsh32X
	opArsh32K
	opArsh32X
	opMov32K
	opMov32X
	opMovsx8to32
	opMovsx16to32
	opNeg32

	// byte order (this interpreter assumes nothing about the host: values
	// are read and written through encoding/binary's little-endian view)
	opZext16
	opZext32
	opNop
	opBswap16
	opBswap32
	opBswap64

	// JMP
	opJa
	opJeq64K
	opJeq64X
	opJgt64K
	opJgt64X
	opJge64K
	opJge64X
	opJset64K
	opJset64X
	opJne64K
	opJne64X
	opJsgt64K
	opJsgt64X
	opJsge64K
	opJsge64X
	opJlt64K
	opJlt64X
	opJle64K
	opJle64X
	opJslt64K
	opJslt64X
	opJsle64K
	opJsle64X

	// JMP32
	opJeq32K
	opJeq32X
	opJgt32K
	opJgt32X
	opJge32K
	opJge32X
	opJset32K
	opJset32X
	opJne32K
	opJne32X
	opJsgt32K
	opJsgt32X
	opJsge32K
	opJsge32X
	opJlt32K
	opJlt32X
	opJle32K
	opJle32X
	opJslt32K
	opJslt32X
	opJsle32K
	opJsle32X

	opCallHelper // imm = index into Program.helpers
	opCallLocal  // off = absolute target
	opCallX      // helper id in dst register
	opTailCall
	opExit

	opLdImm64  // imm = constant
	opLdRegion // off = index into Program.regions, imm = byte offset
	opLdx8     // dst = *(u8 *)(src + off)
	opLdx16    //
	opLdx32    //
	opLdx64    //
	opLdxs8    // sign-extending loads (MEMSX)
	opLdxs16   //
	opLdxs32   //
	opSt8      // *(u8 *)(dst + off) = imm
	opSt16     //
	opSt32     //
	opSt64     //
	opStx8     // *(u8 *)(dst + off) = src
	opStx16    //
	opStx32    //
	opStx64    //
	opAtomic32 // imm = atomic operation
	opAtomic64 //
	opLdAbs8   // legacy packet loads: r0 = ntoh(*(packet + imm))
	opLdAbs16  //
	opLdAbs32  //
	opLdInd8   // r0 = ntoh(*(packet + src + imm))
	opLdInd16  //
	opLdInd32  //
	opFallOff  // appended after the last instruction; never reached in a validated program

	numOps
)
