package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ringtrace/ringtrace/scenarios/vm"
)

func kernelsCommand() *cli.Command {
	return &cli.Command{
		Name:      "kernels",
		Usage:     "fetch kernels into the cache and print what each selector resolves to",
		UsageText: "ringvm kernels [--arch arm64] [SELECTOR…] (default: " + strings.Join(vm.MatrixKernels(vm.ArchAMD64), " ") + "; arm64: " + strings.Join(vm.MatrixKernels(vm.ArchARM64), " ") + ")",
		Flags:     []cli.Flag{cacheFlag, archFlag},
		Action:    fetchKernels,
	}
}

func fetchKernels(c *cli.Context) error {
	arch, err := guestArch(c)
	if err != nil {
		return err
	}
	sels := c.Args().Slice()
	if len(sels) == 0 {
		sels = vm.MatrixKernels(vm.HostArch())
		if arch != "" {
			sels = vm.MatrixKernels(arch)
		}
	}
	parsed := make([]vm.Selector, 0, len(sels))
	for _, s := range sels {
		sel, err := vm.ParseSelector(s)
		if err != nil {
			return err
		}
		if arch != "" {
			if sel, err = sel.WithArch(arch); err != nil {
				return err
			}
		}
		parsed = append(parsed, sel)
	}
	cch, err := cache(c)
	if err != nil {
		return err
	}
	for _, sel := range parsed {
		k, err := cch.Kernel(c.Context, sel)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "%-15s %-28s %-16s %s\n", sel.Label(), k.Release, k.Version, k.Dir)
	}
	return nil
}
