// Package motopatch holds a Python sitecustomize module that makes moto's
// DynamoDB transactions cheap (see sitecustomize.py for why), and installs
// it into the environment of a moto server about to be started.
package motopatch

import (
	_ "embed"
	"os"
	"path/filepath"
	"strings"
)

//go:embed sitecustomize.py
var sitecustomize []byte

// EnvFlag turns the patch on in the Python process.
const EnvFlag = "SHEETLOG_MOTO_FAST_TRANSACT"

// Install writes the module into a new directory under dir and sets
// PYTHONPATH and EnvFlag in this process's environment, so that a moto
// server started afterwards (it inherits the environment) loads it. The
// returned function restores the environment; the directory stays until
// the caller removes dir.
func Install(dir string) (restore func(), err error) {
	d, err := os.MkdirTemp(dir, "motopatch-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(d, "sitecustomize.py"), sitecustomize, 0o644); err != nil {
		return nil, err
	}
	oldPath, hadPath := os.LookupEnv("PYTHONPATH")
	oldFlag, hadFlag := os.LookupEnv(EnvFlag)
	p := d
	if hadPath && oldPath != "" {
		p = strings.Join([]string{d, oldPath}, string(os.PathListSeparator))
	}
	os.Setenv("PYTHONPATH", p)
	os.Setenv(EnvFlag, "1")
	return func() {
		restoreEnv("PYTHONPATH", oldPath, hadPath)
		restoreEnv(EnvFlag, oldFlag, hadFlag)
	}, nil
}

func restoreEnv(k, v string, had bool) {
	if had {
		os.Setenv(k, v)
	} else {
		os.Unsetenv(k)
	}
}
