package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/sluice-io/sluice"

// layers ranks our top-level packages along cmd → wire → consumergroup →
// replication → partition → log (DESIGN.md): a package may import only
// packages of a strictly lower rank (and its own subpackages). test may
// import anything and is not listed. A subpackage counts as its top-level
// directory: replication/configs and replication/cleaner are replication,
// so wire may import them and they may import partition, not consumergroup.
var layers = map[string]int{
	"cmd":           5,
	"wire":          4,
	"consumergroup": 3,
	"replication":   2,
	"partition":     1,
	"log":           0,
}

// component returns the top-level directory of one of our import paths,
// or "" for a path outside the module.
func component(importPath string) string {
	rest, ok := strings.CutPrefix(importPath, module+"/")
	if !ok {
		return ""
	}
	top, _, _ := strings.Cut(rest, "/")
	return top
}

// TestImportsPointDown fails on any import (tests included) that points up
// or sideways along the layers, on a top-level package missing from the
// layers table, and on any import of the standard library "log" (zap is our
// logger; log means the commit log).
func TestImportsPointDown(t *testing.T) {
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		from := component(pkg.ImportPath)
		if from == "test" {
			continue
		}
		fromRank, known := layers[from]
		if !known {
			t.Errorf("package %s is in no layer: add its top-level directory %q to layers in test/imports_test.go (and to DESIGN.md's picture) or move it", pkg.ImportPath, from)
			continue
		}
		for _, imports := range [][]string{pkg.Imports, pkg.TestImports, pkg.XTestImports} {
			for _, imp := range imports {
				if imp == "log" {
					t.Errorf("%s imports the standard library \"log\": use go.uber.org/zap", pkg.ImportPath)
					continue
				}
				to := component(imp)
				if to == "" || to == from {
					continue
				}
				toRank, known := layers[to]
				switch {
				case to == "test":
					t.Errorf("%s imports %s: nothing imports the end-to-end tests", pkg.ImportPath, imp)
				case !known:
					t.Errorf("%s imports %s, which is in no layer", pkg.ImportPath, imp)
				case toRank >= fromRank:
					t.Errorf("%s imports %s: imports must point down cmd → wire → consumergroup → replication → partition → log", pkg.ImportPath, imp)
				}
			}
		}
	}
}
