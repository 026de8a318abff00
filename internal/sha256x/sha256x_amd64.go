//go:build !purego

package sha256x

var useSHANI = cpuidSHANI()

//go:noescape
func blocksSHANI(s *State, p []byte)

//go:noescape
func doubleSHANI(out, mid *State, p []byte)

//go:noescape
func merkleFoldSHANI(root *State, branch []byte)

//go:noescape
func shareSHANI(out, mid *State, head, rest, branch []byte, hdr *[128]byte)

func cpuidSHANI() bool
