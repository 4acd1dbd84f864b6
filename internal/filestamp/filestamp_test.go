package filestamp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// stampOf stats and reads path as a caller of this package does.
func stampOf(tb testing.TB, path string) Stamp {
	tb.Helper()
	info, err := os.Stat(path)
	if os.IsNotExist(err) {
		return New(nil, nil, time.Now())
	}
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return New(info, data, now)
}

func stat(tb testing.TB, path string) os.FileInfo {
	tb.Helper()
	info, err := os.Stat(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	return info
}

func TestUnchanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	old := time.Now().Add(-time.Hour)
	write := func(data string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}

	missing := stampOf(t, path)
	if same, _ := missing.Unchanged(nil); !same {
		t.Errorf("missing.Unchanged(missing) same = false, want true")
	}
	write("one", old)
	if same, _ := missing.Unchanged(stat(t, path)); same {
		t.Errorf("missing.Unchanged(created) same = true, want false")
	}

	s := stampOf(t, path)
	if same, racy := s.Unchanged(stat(t, path)); !same || racy {
		t.Errorf("old file: Unchanged = %v, %v, want true, false", same, racy)
	}

	// chmod 000 keeps size and mtime: the mode must tell.
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	if same, _ := s.Unchanged(stat(t, path)); same {
		t.Errorf("after chmod: Unchanged same = true, want false")
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}

	// Same size, same mtime, new contents, written long ago: only the
	// change time (Linux) can tell; elsewhere this is the documented limit.
	s = stampOf(t, path)
	write("two", old)
	same, _ := s.Unchanged(stat(t, path))
	if same && checksInode {
		t.Errorf("same size and mtime, new contents: Unchanged same = true, want false")
	}

	// A recent modification is racy: the caller must compare contents.
	now := time.Now()
	write("aaa", now)
	s = stampOf(t, path)
	if same, racy := s.Unchanged(stat(t, path)); !same || !racy {
		t.Errorf("recent file: Unchanged = %v, %v, want true, true", same, racy)
	}
	write("bbb", now)
	s2 := stampOf(t, path)
	if s.SameContents(s2) {
		t.Errorf("SameContents(aaa, bbb) = true, want false")
	}
	if !s2.SameContents(stampOf(t, path)) {
		t.Errorf("SameContents(bbb, bbb) = false, want true")
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if same, _ := s2.Unchanged(nil); same {
		t.Errorf("removed: Unchanged same = true, want false")
	}
}

// FuzzStamp writes random versions of a file with random modification
// times (old and recent, equal and not) and checks the promise callers rely
// on: when Unchanged says same and not racy, the contents did not change,
// and when the caller compares contents as told, it sees every change.
func FuzzStamp(f *testing.F) {
	f.Add([]byte("a"), []byte("b"), int64(0), int64(0), false)
	f.Add([]byte("same"), []byte("same"), int64(-3600), int64(-3600), false)
	f.Add([]byte("abc"), []byte("abd"), int64(-3600), int64(-3600), true)
	f.Add([]byte(""), []byte("x"), int64(1), int64(1), false)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, first, second []byte, age1, age2 int64, chmod bool) {
		path := filepath.Join(dir, "f")
		now := time.Now()
		write := func(data []byte, age int64) {
			t.Helper()
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			m := now.Add(time.Duration(age%100000) * time.Second)
			if err := os.Chtimes(path, m, m); err != nil {
				t.Fatal(err)
			}
		}
		os.Remove(path)
		write(first, age1)
		s := stampOf(t, path)
		write(second, age2)
		if chmod {
			if err := os.Chmod(path, 0o400); err != nil {
				t.Fatal(err)
			}
		}
		info := stat(t, path)
		same, racy := s.Unchanged(info)
		changed := !bytes.Equal(first, second)
		if !same || racy {
			// The caller reads again; a content comparison decides.
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if same && s.SameContents(New(info, data, time.Now())) == changed {
				t.Errorf("racy re-read: SameContents = %v for changed = %v", !changed, changed)
			}
			return
		}
		if changed && checksInode {
			t.Errorf("Unchanged = same, not racy, but the contents changed from %q to %q", first, second)
		}
	})
}
