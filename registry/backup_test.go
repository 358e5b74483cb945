package registry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestBackupWhileWriting: a backup taken while writers keep going is a
// complete database that opens with the original key and holds every
// registration written before it began.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	db := openTest(t, path)
	for i := range 200 {
		if err := db.PutRegistration(ctx, reg(fmt.Sprintf("u%d@x", i), "gw")); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 200; i < 400; i++ {
			if err := db.PutRegistration(ctx, reg(fmt.Sprintf("u%d@x", i), "gw")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	dest := filepath.Join(dir, "backup.db")
	if err := db.Backup(ctx, dest); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if m, _ := filepath.Glob(dest + ".tmp-*"); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}

	b, err := Open(dest, Options{KeyFile: path + ".key", ReadOnly: true})
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer b.Close()
	for i := range 200 {
		r, err := b.Registration(ctx, fmt.Sprintf("u%d@x", i), "gw")
		if err != nil || r.Secrets["password"] != fmt.Sprintf("pw-of-u%d@x", i) {
			t.Fatalf("registration %d in the backup: %+v, %v", i, r, err)
		}
	}
	if _, err := os.Stat(dest + ".key"); err == nil {
		t.Error("the backup copied the key next to the data")
	}
}
