//go:build !purego

#include "textflag.h"

// SHA-256 compression with the Intel SHA extensions (SHA-NI).
//
// Register roles, shared by all macros below:
//   X0        message+constant words for the next two rounds (implicit SHA256RNDS2 operand)
//   X1, X2    working state in the SHA-NI lane order ABEF and CDGH
//   X3..X6    message schedule, four words each (W[t..t+3])
//   X7        scratch
//   X8, X9    state saved at the start of a compression (for the final addition)
//   X10       PSHUFB mask that byte-swaps each 32-bit word (big-endian message load)
//   R8        address of the round constants k256
//
// Go assembler operand order is reversed from Intel's: "SHA256RNDS2 X0, X1, X2"
// runs two rounds on CDGH=X2, ABEF=X1 and leaves the new ABEF in X2; the old
// ABEF register then holds the new CDGH, so two calls in a row swap back.

// TOSHANI converts state words X1=[a b c d], X2=[e f g h] (lane 0 first) into X1=ABEF, X2=CDGH.
#define TOSHANI \
	PSHUFD  $0xB1, X1, X7; \
	PSHUFD  $0x1B, X2, X2; \
	MOVO    X7, X1; \
	PALIGNR $8, X2, X1; \
	PBLENDW $0xF0, X7, X2

// TOWORDS is the inverse of TOSHANI.
#define TOWORDS \
	PSHUFD  $0x1B, X1, X1; \
	PSHUFD  $0xB1, X2, X2; \
	MOVO    X1, X7; \
	PBLENDW $0xF0, X2, X1; \
	PALIGNR $8, X7, X2

// ROUNDS4 runs four rounds with message words m and round constants at byte offset off.
#define ROUNDS4(m, off) \
	MOVOU       off(R8), X0; \
	PADDD       m, X0; \
	SHA256RNDS2 X0, X1, X2; \
	PSHUFD      $0x0E, X0, X0; \
	SHA256RNDS2 X0, X2, X1

// ROUNDS4WK runs four rounds whose message+constant words are precomputed at off(R9).
#define ROUNDS4WK(off) \
	MOVOU       off(R9), X0; \
	SHA256RNDS2 X0, X1, X2; \
	PSHUFD      $0x0E, X0, X0; \
	SHA256RNDS2 X0, X2, X1

// SCHED computes the next four schedule words into m0 from m0..m3 (oldest first).
#define SCHED(m0, m1, m2, m3) \
	SHA256MSG1 m1, m0; \
	MOVO       m3, X7; \
	PALIGNR    $4, m2, X7; \
	PADDD      X7, m0; \
	SHA256MSG2 m3, m0

// COMPRESS runs the 64 rounds on state X1/X2 with the message words in X3..X6.
#define COMPRESS \
	MOVO X1, X8; \
	MOVO X2, X9; \
	ROUNDS4(X3, 0); \
	ROUNDS4(X4, 16); \
	ROUNDS4(X5, 32); \
	ROUNDS4(X6, 48); \
	SCHED(X3, X4, X5, X6); \
	ROUNDS4(X3, 64); \
	SCHED(X4, X5, X6, X3); \
	ROUNDS4(X4, 80); \
	SCHED(X5, X6, X3, X4); \
	ROUNDS4(X5, 96); \
	SCHED(X6, X3, X4, X5); \
	ROUNDS4(X6, 112); \
	SCHED(X3, X4, X5, X6); \
	ROUNDS4(X3, 128); \
	SCHED(X4, X5, X6, X3); \
	ROUNDS4(X4, 144); \
	SCHED(X5, X6, X3, X4); \
	ROUNDS4(X5, 160); \
	SCHED(X6, X3, X4, X5); \
	ROUNDS4(X6, 176); \
	SCHED(X3, X4, X5, X6); \
	ROUNDS4(X3, 192); \
	SCHED(X4, X5, X6, X3); \
	ROUNDS4(X4, 208); \
	SCHED(X5, X6, X3, X4); \
	ROUNDS4(X5, 224); \
	SCHED(X6, X3, X4, X5); \
	ROUNDS4(X6, 240); \
	PADDD X8, X1; \
	PADDD X9, X2

// COMPRESSPAD64 compresses the constant padding block that follows a 64-byte
// message (its schedule plus constants is the table padwk, in R9).
#define COMPRESSPAD64 \
	MOVO X1, X8; \
	MOVO X2, X9; \
	ROUNDS4WK(0); \
	ROUNDS4WK(16); \
	ROUNDS4WK(32); \
	ROUNDS4WK(48); \
	ROUNDS4WK(64); \
	ROUNDS4WK(80); \
	ROUNDS4WK(96); \
	ROUNDS4WK(112); \
	ROUNDS4WK(128); \
	ROUNDS4WK(144); \
	ROUNDS4WK(160); \
	ROUNDS4WK(176); \
	ROUNDS4WK(192); \
	ROUNDS4WK(208); \
	ROUNDS4WK(224); \
	ROUNDS4WK(240); \
	PADDD X8, X1; \
	PADDD X9, X2

// LOADMSG loads one 64-byte big-endian block at (ptr) into X3..X6.
#define LOADMSG(ptr) \
	MOVOU  (ptr), X3; \
	PSHUFB X10, X3; \
	MOVOU  16(ptr), X4; \
	PSHUFB X10, X4; \
	MOVOU  32(ptr), X5; \
	PSHUFB X10, X5; \
	MOVOU  48(ptr), X6; \
	PSHUFB X10, X6

// SECOND hashes the digest in X1/X2 (SHA-NI order) again: SHA-256 of the
// 32-byte digest, one block, from the initial value. Result in X1/X2 (SHA-NI order).
#define SECOND \
	TOWORDS; \
	MOVO  X1, X3; \
	MOVO  X2, X4; \
	MOVOU pad32<>+0(SB), X5; \
	MOVOU pad32<>+16(SB), X6; \
	MOVOU ivabef<>(SB), X1; \
	MOVOU ivcdgh<>(SB), X2; \
	COMPRESS

// func blocksSHANI(s *State, p []byte)
TEXT ·blocksSHANI(SB), NOSPLIT, $0-32
	MOVQ s+0(FP), DI
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), DX
	SHRQ $6, DX
	JZ   blocksdone
	MOVOU (DI), X1
	MOVOU 16(DI), X2
	TOSHANI
	MOVOU bswap<>(SB), X10
	LEAQ  k256<>(SB), R8

blocksloop:
	LOADMSG(SI)
	COMPRESS
	ADDQ $64, SI
	DECQ DX
	JNZ  blocksloop
	TOWORDS
	MOVOU X1, (DI)
	MOVOU X2, 16(DI)

blocksdone:
	RET

// func doubleSHANI(out *State, mid *State, p []byte)
// len(p) is a non-zero multiple of 64 (checked by the caller).
TEXT ·doubleSHANI(SB), NOSPLIT, $0-40
	MOVQ  mid+8(FP), DI
	MOVQ  p_base+16(FP), SI
	MOVQ  p_len+24(FP), DX
	SHRQ  $6, DX
	MOVOU (DI), X1
	MOVOU 16(DI), X2
	TOSHANI
	MOVOU bswap<>(SB), X10
	LEAQ  k256<>(SB), R8

doubleloop:
	LOADMSG(SI)
	COMPRESS
	ADDQ $64, SI
	DECQ DX
	JNZ  doubleloop
	SECOND
	TOWORDS
	MOVQ  out+0(FP), DI
	MOVOU X1, (DI)
	MOVOU X2, 16(DI)
	RET

// func merkleFoldSHANI(root *State, branch []byte)
// For each 32-byte branch hash h: root = sha256d(root ‖ h).
TEXT ·merkleFoldSHANI(SB), NOSPLIT, $0-32
	MOVQ  root+0(FP), DI
	MOVQ  branch_base+8(FP), SI
	MOVQ  branch_len+16(FP), DX
	SHRQ  $5, DX
	JZ    folddone
	MOVOU (DI), X11
	MOVOU 16(DI), X12
	MOVOU bswap<>(SB), X10
	LEAQ  k256<>(SB), R8
	LEAQ  padwk<>(SB), R9

foldloop:
	// The running root is already in word form: no byte swap needed.
	MOVO   X11, X3
	MOVO   X12, X4
	MOVOU  (SI), X5
	PSHUFB X10, X5
	MOVOU  16(SI), X6
	PSHUFB X10, X6
	MOVOU  ivabef<>(SB), X1
	MOVOU  ivcdgh<>(SB), X2
	COMPRESS
	COMPRESSPAD64
	SECOND
	TOWORDS
	MOVO   X1, X11
	MOVO   X2, X12
	ADDQ   $32, SI
	DECQ   DX
	JNZ    foldloop
	MOVOU  X11, (DI)
	MOVOU  X12, 16(DI)

folddone:
	RET

// func shareSHANI(out *State, mid *State, head []byte, rest []byte, branch []byte, hdr *[128]byte)
// The whole share hash in one call (see Share in sha256x.go): the coinbase
// from mid over head then rest (both whole padded blocks, head non-empty),
// SHA-256 again, the merkle fold over branch, the root written into hdr at
// byte 36 (big-endian words, i.e. digest bytes), then sha256d over hdr's two
// blocks. out receives the header hash words.
TEXT ·shareSHANI(SB), NOSPLIT, $0-96
	MOVQ  mid+8(FP), DI
	MOVOU (DI), X1
	MOVOU 16(DI), X2
	TOSHANI
	MOVOU bswap<>(SB), X10
	LEAQ  k256<>(SB), R8
	LEAQ  padwk<>(SB), R9

	MOVQ head_base+16(FP), SI
	MOVQ head_len+24(FP), DX
	SHRQ $6, DX

shareheadloop:
	LOADMSG(SI)
	COMPRESS
	ADDQ $64, SI
	DECQ DX
	JNZ  shareheadloop

	MOVQ rest_base+40(FP), SI
	MOVQ rest_len+48(FP), DX
	SHRQ $6, DX
	JZ   sharerestdone

sharerestloop:
	LOADMSG(SI)
	COMPRESS
	ADDQ $64, SI
	DECQ DX
	JNZ  sharerestloop

sharerestdone:
	SECOND
	TOWORDS
	MOVO X1, X11
	MOVO X2, X12

	MOVQ branch_base+64(FP), SI
	MOVQ branch_len+72(FP), DX
	SHRQ $5, DX
	JZ   sharefolddone

sharefoldloop:
	MOVO   X11, X3
	MOVO   X12, X4
	MOVOU  (SI), X5
	PSHUFB X10, X5
	MOVOU  16(SI), X6
	PSHUFB X10, X6
	MOVOU  ivabef<>(SB), X1
	MOVOU  ivcdgh<>(SB), X2
	COMPRESS
	COMPRESSPAD64
	SECOND
	TOWORDS
	MOVO   X1, X11
	MOVO   X2, X12
	ADDQ   $32, SI
	DECQ   DX
	JNZ    sharefoldloop

sharefolddone:
	// Root words → digest bytes in the header.
	MOVQ   hdr+88(FP), DI
	MOVO   X11, X3
	PSHUFB X10, X3
	MOVOU  X3, 36(DI)
	MOVO   X12, X4
	PSHUFB X10, X4
	MOVOU  X4, 52(DI)

	MOVOU ivabef<>(SB), X1
	MOVOU ivcdgh<>(SB), X2
	LOADMSG(DI)
	COMPRESS
	ADDQ  $64, DI
	LOADMSG(DI)
	COMPRESS
	SECOND
	TOWORDS
	MOVQ  out+0(FP), DI
	MOVOU X1, (DI)
	MOVOU X2, 16(DI)
	RET

// func cpuidSHANI() bool
// Reports SHA (leaf 7 EBX bit 29), SSSE3 (leaf 1 ECX bit 9) and SSE4.1 (leaf 1 ECX bit 19).
TEXT ·cpuidSHANI(SB), NOSPLIT, $0-1
	MOVL $0, AX
	CPUID
	CMPL AX, $7
	JB   nosha
	MOVL $1, AX
	MOVL $0, CX
	CPUID
	MOVL CX, R10
	ANDL $0x00080200, R10
	CMPL R10, $0x00080200
	JNE  nosha
	MOVL $7, AX
	MOVL $0, CX
	CPUID
	BTL  $29, BX
	JCC  nosha
	MOVB $1, ret+0(FP)
	RET

nosha:
	MOVB $0, ret+0(FP)
	RET

DATA k256<>+0(SB)/4, $0x428a2f98
DATA k256<>+4(SB)/4, $0x71374491
DATA k256<>+8(SB)/4, $0xb5c0fbcf
DATA k256<>+12(SB)/4, $0xe9b5dba5
DATA k256<>+16(SB)/4, $0x3956c25b
DATA k256<>+20(SB)/4, $0x59f111f1
DATA k256<>+24(SB)/4, $0x923f82a4
DATA k256<>+28(SB)/4, $0xab1c5ed5
DATA k256<>+32(SB)/4, $0xd807aa98
DATA k256<>+36(SB)/4, $0x12835b01
DATA k256<>+40(SB)/4, $0x243185be
DATA k256<>+44(SB)/4, $0x550c7dc3
DATA k256<>+48(SB)/4, $0x72be5d74
DATA k256<>+52(SB)/4, $0x80deb1fe
DATA k256<>+56(SB)/4, $0x9bdc06a7
DATA k256<>+60(SB)/4, $0xc19bf174
DATA k256<>+64(SB)/4, $0xe49b69c1
DATA k256<>+68(SB)/4, $0xefbe4786
DATA k256<>+72(SB)/4, $0x0fc19dc6
DATA k256<>+76(SB)/4, $0x240ca1cc
DATA k256<>+80(SB)/4, $0x2de92c6f
DATA k256<>+84(SB)/4, $0x4a7484aa
DATA k256<>+88(SB)/4, $0x5cb0a9dc
DATA k256<>+92(SB)/4, $0x76f988da
DATA k256<>+96(SB)/4, $0x983e5152
DATA k256<>+100(SB)/4, $0xa831c66d
DATA k256<>+104(SB)/4, $0xb00327c8
DATA k256<>+108(SB)/4, $0xbf597fc7
DATA k256<>+112(SB)/4, $0xc6e00bf3
DATA k256<>+116(SB)/4, $0xd5a79147
DATA k256<>+120(SB)/4, $0x06ca6351
DATA k256<>+124(SB)/4, $0x14292967
DATA k256<>+128(SB)/4, $0x27b70a85
DATA k256<>+132(SB)/4, $0x2e1b2138
DATA k256<>+136(SB)/4, $0x4d2c6dfc
DATA k256<>+140(SB)/4, $0x53380d13
DATA k256<>+144(SB)/4, $0x650a7354
DATA k256<>+148(SB)/4, $0x766a0abb
DATA k256<>+152(SB)/4, $0x81c2c92e
DATA k256<>+156(SB)/4, $0x92722c85
DATA k256<>+160(SB)/4, $0xa2bfe8a1
DATA k256<>+164(SB)/4, $0xa81a664b
DATA k256<>+168(SB)/4, $0xc24b8b70
DATA k256<>+172(SB)/4, $0xc76c51a3
DATA k256<>+176(SB)/4, $0xd192e819
DATA k256<>+180(SB)/4, $0xd6990624
DATA k256<>+184(SB)/4, $0xf40e3585
DATA k256<>+188(SB)/4, $0x106aa070
DATA k256<>+192(SB)/4, $0x19a4c116
DATA k256<>+196(SB)/4, $0x1e376c08
DATA k256<>+200(SB)/4, $0x2748774c
DATA k256<>+204(SB)/4, $0x34b0bcb5
DATA k256<>+208(SB)/4, $0x391c0cb3
DATA k256<>+212(SB)/4, $0x4ed8aa4a
DATA k256<>+216(SB)/4, $0x5b9cca4f
DATA k256<>+220(SB)/4, $0x682e6ff3
DATA k256<>+224(SB)/4, $0x748f82ee
DATA k256<>+228(SB)/4, $0x78a5636f
DATA k256<>+232(SB)/4, $0x84c87814
DATA k256<>+236(SB)/4, $0x8cc70208
DATA k256<>+240(SB)/4, $0x90befffa
DATA k256<>+244(SB)/4, $0xa4506ceb
DATA k256<>+248(SB)/4, $0xbef9a3f7
DATA k256<>+252(SB)/4, $0xc67178f2
GLOBL k256<>(SB), RODATA|NOPTR, $256

DATA padwk<>+0(SB)/4, $0xc28a2f98
DATA padwk<>+4(SB)/4, $0x71374491
DATA padwk<>+8(SB)/4, $0xb5c0fbcf
DATA padwk<>+12(SB)/4, $0xe9b5dba5
DATA padwk<>+16(SB)/4, $0x3956c25b
DATA padwk<>+20(SB)/4, $0x59f111f1
DATA padwk<>+24(SB)/4, $0x923f82a4
DATA padwk<>+28(SB)/4, $0xab1c5ed5
DATA padwk<>+32(SB)/4, $0xd807aa98
DATA padwk<>+36(SB)/4, $0x12835b01
DATA padwk<>+40(SB)/4, $0x243185be
DATA padwk<>+44(SB)/4, $0x550c7dc3
DATA padwk<>+48(SB)/4, $0x72be5d74
DATA padwk<>+52(SB)/4, $0x80deb1fe
DATA padwk<>+56(SB)/4, $0x9bdc06a7
DATA padwk<>+60(SB)/4, $0xc19bf374
DATA padwk<>+64(SB)/4, $0x649b69c1
DATA padwk<>+68(SB)/4, $0xf0fe4786
DATA padwk<>+72(SB)/4, $0x0fe1edc6
DATA padwk<>+76(SB)/4, $0x240cf254
DATA padwk<>+80(SB)/4, $0x4fe9346f
DATA padwk<>+84(SB)/4, $0x6cc984be
DATA padwk<>+88(SB)/4, $0x61b9411e
DATA padwk<>+92(SB)/4, $0x16f988fa
DATA padwk<>+96(SB)/4, $0xf2c65152
DATA padwk<>+100(SB)/4, $0xa88e5a6d
DATA padwk<>+104(SB)/4, $0xb019fc65
DATA padwk<>+108(SB)/4, $0xb9d99ec7
DATA padwk<>+112(SB)/4, $0x9a1231c3
DATA padwk<>+116(SB)/4, $0xe70eeaa0
DATA padwk<>+120(SB)/4, $0xfdb1232b
DATA padwk<>+124(SB)/4, $0xc7353eb0
DATA padwk<>+128(SB)/4, $0x3069bad5
DATA padwk<>+132(SB)/4, $0xcb976d5f
DATA padwk<>+136(SB)/4, $0x5a0f118f
DATA padwk<>+140(SB)/4, $0xdc1eeefd
DATA padwk<>+144(SB)/4, $0x0a35b689
DATA padwk<>+148(SB)/4, $0xde0b7a04
DATA padwk<>+152(SB)/4, $0x58f4ca9d
DATA padwk<>+156(SB)/4, $0xe15d5b16
DATA padwk<>+160(SB)/4, $0x007f3e86
DATA padwk<>+164(SB)/4, $0x37088980
DATA padwk<>+168(SB)/4, $0xa507ea32
DATA padwk<>+172(SB)/4, $0x6fab9537
DATA padwk<>+176(SB)/4, $0x17406110
DATA padwk<>+180(SB)/4, $0x0d8cd6f1
DATA padwk<>+184(SB)/4, $0xcdaa3b6d
DATA padwk<>+188(SB)/4, $0xc0bbbe37
DATA padwk<>+192(SB)/4, $0x83613bda
DATA padwk<>+196(SB)/4, $0xdb48a363
DATA padwk<>+200(SB)/4, $0x0b02e931
DATA padwk<>+204(SB)/4, $0x6fd15ca7
DATA padwk<>+208(SB)/4, $0x521afaca
DATA padwk<>+212(SB)/4, $0x31338431
DATA padwk<>+216(SB)/4, $0x6ed41a95
DATA padwk<>+220(SB)/4, $0x6d437890
DATA padwk<>+224(SB)/4, $0xc39c91f2
DATA padwk<>+228(SB)/4, $0x9eccabbd
DATA padwk<>+232(SB)/4, $0xb5c9a0e6
DATA padwk<>+236(SB)/4, $0x532fb63c
DATA padwk<>+240(SB)/4, $0xd2c741c6
DATA padwk<>+244(SB)/4, $0x07237ea3
DATA padwk<>+248(SB)/4, $0xa4954b68
DATA padwk<>+252(SB)/4, $0x4c191d76
GLOBL padwk<>(SB), RODATA|NOPTR, $256

DATA bswap<>+0(SB)/4, $0x00010203
DATA bswap<>+4(SB)/4, $0x04050607
DATA bswap<>+8(SB)/4, $0x08090a0b
DATA bswap<>+12(SB)/4, $0x0c0d0e0f
GLOBL bswap<>(SB), RODATA|NOPTR, $16

DATA ivabef<>+0(SB)/4, $0x9b05688c
DATA ivabef<>+4(SB)/4, $0x510e527f
DATA ivabef<>+8(SB)/4, $0xbb67ae85
DATA ivabef<>+12(SB)/4, $0x6a09e667
GLOBL ivabef<>(SB), RODATA|NOPTR, $16

DATA ivcdgh<>+0(SB)/4, $0x5be0cd19
DATA ivcdgh<>+4(SB)/4, $0x1f83d9ab
DATA ivcdgh<>+8(SB)/4, $0xa54ff53a
DATA ivcdgh<>+12(SB)/4, $0x3c6ef372
GLOBL ivcdgh<>(SB), RODATA|NOPTR, $16

DATA pad32<>+0(SB)/4, $0x80000000
DATA pad32<>+4(SB)/4, $0x00000000
DATA pad32<>+8(SB)/4, $0x00000000
DATA pad32<>+12(SB)/4, $0x00000000
DATA pad32<>+16(SB)/4, $0x00000000
DATA pad32<>+20(SB)/4, $0x00000000
DATA pad32<>+24(SB)/4, $0x00000000
DATA pad32<>+28(SB)/4, $0x00000100
GLOBL pad32<>(SB), RODATA|NOPTR, $32

