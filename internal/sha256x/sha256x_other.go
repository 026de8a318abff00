//go:build !amd64 || purego

package sha256x

const useSHANI = false

func blocksSHANI(s *State, p []byte)                                        {}
func doubleSHANI(out, mid *State, p []byte)                                 {}
func merkleFoldSHANI(root *State, branch []byte)                            {}
func shareSHANI(out, mid *State, head, rest, branch []byte, hdr *[128]byte) {}
