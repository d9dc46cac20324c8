package vm

import (
	"context"
	"fmt"
)

// kernelModules picks the modules to load for k (labModules plus extra),
// adds their dependencies from each module's .modinfo, and returns them
// decompressed in load order.
func kernelModules(ctx context.Context, k *Kernel, early, extra []string) ([]guestModule, error) {
	ms, err := readModuleSet(k.Modules, k.Config)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Release, err)
	}
	first, err := ms.named(k.Release, early)
	if err != nil {
		return nil, err
	}
	want, err := ms.wanted(k.Release, extra)
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{}
	deps := func(name string) ([]string, error) {
		p := ms.Files[name]
		if p == "" {
			if ms.Builtin[name] {
				return nil, nil
			}
			return nil, fmt.Errorf("kernel %s: module %s (a dependency) not found", k.Release, name)
		}
		b, err := readModule(ctx, p)
		if err != nil {
			return nil, err
		}
		info, err := modinfo(b)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", name, err)
		}
		data[name] = b
		return modDepends(info["depends"]), nil
	}
	firstOrder, err := loadOrder(first, deps)
	if err != nil {
		return nil, err
	}
	order, err := loadOrder(append(first, want...), deps)
	if err != nil {
		return nil, err
	}
	mods := make([]guestModule, 0, len(order))
	for i, name := range order {
		if b, ok := data[name]; ok {
			mods = append(mods, guestModule{Name: name, Data: b, Early: i < len(firstOrder)})
		}
	}
	return mods, nil
}
