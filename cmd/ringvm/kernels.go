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
		UsageText: "ringvm kernels [SELECTOR…] (default: " + strings.Join(vm.MatrixKernels(), " ") + ")",
		Flags:     []cli.Flag{cacheFlag},
		Action:    fetchKernels,
	}
}

func fetchKernels(c *cli.Context) error {
	sels := c.Args().Slice()
	if len(sels) == 0 {
		sels = vm.MatrixKernels()
	}
	parsed := make([]vm.Selector, 0, len(sels))
	for _, s := range sels {
		sel, err := vm.ParseSelector(s)
		if err != nil {
			return err
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
		fmt.Fprintf(os.Stdout, "%-9s %-28s %-16s %s\n", sel.Raw, k.Release, k.Version, k.Dir)
	}
	return nil
}
