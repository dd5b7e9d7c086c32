package lua_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seckill/seckill/lua"
)

// Every script opens with its contract, and every .lua file is embedded.
func TestScriptsDocumentTheirContract(t *testing.T) {
	t.Parallel()
	embedded := map[string]string{
		"buy.lua": lua.Buy, "warm.lua": lua.Warm, "restock.lua": lua.Restock,
		"rebuild.lua": lua.Rebuild, "sem_acquire.lua": lua.SemAcquire, "sem_renew.lua": lua.SemRenew, "sem_release.lua": lua.SemRelease,
		"node_renew.lua": lua.NodeRenew, "node_release.lua": lua.NodeRelease, "fence.lua": lua.Fence,
	}
	files, err := filepath.Glob("*.lua")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(embedded) {
		t.Errorf("%d .lua files, %d embedded: %v", len(files), len(embedded), files)
	}
	for _, name := range files {
		src, ok := embedded[name]
		if !ok {
			t.Errorf("%s is not embedded", name)
			continue
		}
		onDisk, err := os.ReadFile(name)
		if err != nil || string(onDisk) != src {
			t.Errorf("%s: embedded copy differs from the file (%v)", name, err)
		}
		var header strings.Builder
		for line := range strings.Lines(src) {
			if !strings.HasPrefix(line, "--") {
				break
			}
			header.WriteString(line)
		}
		for _, part := range []string{"KEYS[1]", "ARGV[1]", "Returns"} {
			if !strings.Contains(header.String(), part) {
				t.Errorf("%s: header comment does not document %s", name, part)
			}
		}
	}
}
