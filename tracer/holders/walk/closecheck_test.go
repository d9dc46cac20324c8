package walk

import "github.com/cilium/ebpf"

func ebpfProgramByID(id ebpf.ProgramID) (*ebpf.Program, error) { return ebpf.NewProgramFromID(id) }
