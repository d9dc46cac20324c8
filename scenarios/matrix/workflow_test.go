package matrix

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v4"

	"github.com/ringtrace/ringtrace/scenarios/vm"
)

const workflow = "../../.github/workflows/vmtest.yml"

// TestWorkflowLints: the GitHub Actions workflow that shards the matrix one
// job per kernel passes actionlint.
func TestWorkflowLints(t *testing.T) {
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintFile(workflow, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", filepath.Base(workflow), e.Line, e.Column, e.Message, e.Kind)
	}
}

// TestWorkflowKernels: the workflow's jobs are the kernels `make vmtest`
// runs by default, no more, no fewer.
func TestWorkflowKernels(t *testing.T) {
	b, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		Jobs map[string]struct {
			Strategy struct {
				Matrix struct {
					Kernel []string `yaml:"kernel"`
				} `yaml:"matrix"`
			} `yaml:"strategy"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	got := w.Jobs["vmtest"].Strategy.Matrix.Kernel
	if want := append(vm.MatrixKernels(vm.ArchAMD64), vm.MatrixKernels(vm.ArchARM64)...); !slices.Equal(got, want) {
		t.Errorf("workflow kernels %v, make vmtest runs %v", got, want)
	}
}
