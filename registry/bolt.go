package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Options configures Open.
type Options struct {
	// KeyFile holds the encryption key for secrets; it is created on first
	// start. A read-only open works without it, but leaves secrets empty.
	KeyFile string
	// Timeout bounds the wait for another process's lock (default 1s).
	Timeout time.Duration
	// ReadOnly opens the file for reading only.
	ReadOnly bool
	// Logger receives what the store skips (records that do not decode);
	// slog.Default() if nil.
	Logger *slog.Logger
}

// DB is the bbolt implementation of Store.
type DB struct {
	db     *bolt.DB
	sealer *sealer // nil when read-only without a key
	now    func() time.Time
	log    *slog.Logger
}

var _ Store = (*DB)(nil)

// Open opens (creating if needed) the database at path.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.KeyFile == "" {
		opts.KeyFile = path + ".key"
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	key, err := loadKey(opts.KeyFile)
	missing := errors.Is(err, os.ErrNotExist)
	if err != nil && !missing {
		return nil, err
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, ReadOnly: opts.ReadOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: open %s: %w", path, err)
	}
	if missing && !opts.ReadOnly {
		// A new key only for a database without secrets: one sealed with
		// a lost key is refused before anything is written.
		if err := forgetKey(bdb, path, opts.KeyFile); err != nil {
			bdb.Close()
			return nil, err
		}
		if key, err = createKey(opts.KeyFile); err != nil {
			bdb.Close()
			return nil, err
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &DB{db: bdb, now: time.Now, log: opts.Logger}
	if key != nil {
		if d.sealer, err = newSealer(key); err != nil {
			bdb.Close()
			return nil, err
		}
	}
	if err := d.prepare(path, opts); err != nil {
		bdb.Close()
		return nil, err
	}
	return d, nil
}

// prepare migrates the schema and checks that the key belongs to the file.
func (d *DB) prepare(path string, opts Options) error {
	if opts.ReadOnly {
		return d.db.View(func(tx *bolt.Tx) error {
			if v := schemaVersion(tx); v != SchemaVersion {
				return fmt.Errorf("registry: %s has schema version %d, this program needs %d: run the gateway once to migrate", path, v, SchemaVersion)
			}
			return d.checkKey(tx, path, opts.KeyFile, false)
		})
	}
	if err := migrate(d.db); err != nil {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error { return d.checkKey(tx, path, opts.KeyFile, true) })
}

// forgetKey prepares a database for a new key, its key file being
// missing: it refuses if any secret is sealed with the old key, and
// otherwise removes the old key's check.
func forgetKey(db *bolt.DB, path, keyFile string) error {
	return db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || meta.Get(keyCheck) == nil {
			return nil
		}
		if n := sealedRecords(tx); n > 0 {
			return fmt.Errorf("registry: key file %s is missing, and %d registration(s) in %s hold secrets sealed with it: restore the key file from the backup taken with the database (no new key was written)", keyFile, n, path)
		}
		return meta.Delete(keyCheck)
	})
}

// sealedRecords counts the registrations that hold sealed secrets; a
// record that does not decode counts, as it may hold some.
func sealedRecords(tx *bolt.Tx) int {
	users := tx.Bucket(bucketUsers)
	if users == nil {
		return 0
	}
	n := 0
	_ = users.ForEachBucket(func(uk []byte) error {
		ub := users.Bucket(uk)
		return ub.ForEachBucket(func(tk []byte) error {
			raw := ub.Bucket(tk).Get(keyReg)
			if raw == nil {
				return nil
			}
			var s stored
			if json.Unmarshal(raw, &s) != nil || len(s.Secrets) > 0 {
				n++
			}
			return nil
		})
	})
	return n
}

func (d *DB) checkKey(tx *bolt.Tx, path, keyFile string, record bool) error {
	if d.sealer == nil {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	want := meta.Get(keyCheck)
	switch {
	case want == nil && record:
		return meta.Put(keyCheck, d.sealer.check())
	case want != nil && !bytes.Equal(want, d.sealer.check()):
		return fmt.Errorf("registry: key file %s does not match database %s (restore the key from the backup taken with the database)", keyFile, path)
	}
	return nil
}

// Close implements Store.
func (d *DB) Close() error { return d.db.Close() }

// stored is a registration as kept on disk.
type stored struct {
	Fields  map[string]string `json:"fields,omitempty"`
	Secrets map[string][]byte `json:"secrets,omitempty"`
	Created time.Time         `json:"created"`
	Updated time.Time         `json:"updated"`
}

func checkIDs(ids ...string) error {
	for _, id := range ids {
		if id == "" {
			return errors.New("empty user, transport or key")
		}
	}
	return nil
}

// regBucket returns the bucket of a registration, or nil.
func regBucket(tx *bolt.Tx, user, transport string) *bolt.Bucket {
	u := tx.Bucket(bucketUsers).Bucket([]byte(user))
	if u == nil {
		return nil
	}
	return u.Bucket([]byte(transport))
}

// PutRegistration implements Store.
func (d *DB) PutRegistration(ctx context.Context, r Registration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs(r.User, r.Transport); err != nil {
		return fmt.Errorf("registry: put registration: %w", err)
	}
	if len(r.Secrets) > 0 && d.sealer == nil {
		return errors.New("registry: put registration: opened without a key")
	}
	err := d.db.Update(func(tx *bolt.Tx) error {
		u, err := tx.Bucket(bucketUsers).CreateBucketIfNotExists([]byte(r.User))
		if err != nil {
			return err
		}
		b, err := u.CreateBucketIfNotExists([]byte(r.Transport))
		if err != nil {
			return err
		}
		now := d.now().UTC()
		s := stored{Fields: r.Fields, Created: now, Updated: now, Secrets: make(map[string][]byte)}
		var old stored
		if raw := b.Get(keyReg); raw != nil && json.Unmarshal(raw, &old) == nil {
			s.Created = old.Created
		}
		for name, v := range r.Secrets {
			if s.Secrets[name], err = d.sealer.seal(r.User, r.Transport, name, v); err != nil {
				return err
			}
		}
		raw, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return b.Put(keyReg, raw)
	})
	if err != nil {
		return fmt.Errorf("registry: put registration %s/%s: %w", r.User, r.Transport, err)
	}
	return nil
}

// Registration implements Store.
func (d *DB) Registration(ctx context.Context, user, transport string) (Registration, error) {
	if err := ctx.Err(); err != nil {
		return Registration{}, err
	}
	var r Registration
	err := d.db.View(func(tx *bolt.Tx) error {
		b := regBucket(tx, user, transport)
		if b == nil || b.Get(keyReg) == nil {
			return ErrNotFound
		}
		var err error
		r, err = d.decode(user, transport, b.Get(keyReg), true)
		return err
	})
	if err != nil {
		return Registration{}, fmt.Errorf("registry: registration %s/%s: %w", user, transport, err)
	}
	return r, nil
}

func (d *DB) decode(user, transport string, raw []byte, secrets bool) (Registration, error) {
	var s stored
	if err := json.Unmarshal(raw, &s); err != nil {
		return Registration{}, fmt.Errorf("corrupt record: %w", err)
	}
	r := Registration{User: user, Transport: transport, Fields: s.Fields, Created: s.Created, Updated: s.Updated}
	if r.Fields == nil {
		r.Fields = make(map[string]string)
	}
	if !secrets || d.sealer == nil {
		return r, nil
	}
	r.Secrets = make(map[string]string, len(s.Secrets))
	for name, sealed := range s.Secrets {
		v, err := d.sealer.open(user, transport, name, sealed)
		if err != nil {
			return Registration{}, err
		}
		r.Secrets[name] = v
	}
	return r, nil
}

// Registrations implements Store.
func (d *DB) Registrations(ctx context.Context, opts ListOptions) ([]Registration, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Registration
	err := d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsers).Cursor()
		var k, v []byte
		switch {
		case opts.User != "":
			k, v = c.Seek([]byte(opts.User))
		case opts.After != "":
			k, v = c.Seek([]byte(opts.After))
			if k != nil && string(k) == opts.After {
				k, v = c.Next()
			}
		default:
			k, v = c.First()
		}
		for ; k != nil; k, v = c.Next() {
			if v != nil || (opts.User != "" && string(k) != opts.User) {
				break
			}
			user := string(k)
			ub := tx.Bucket(bucketUsers).Bucket(k)
			err := ub.ForEachBucket(func(tk []byte) error {
				if opts.Transport != "" && string(tk) != opts.Transport {
					return nil
				}
				raw := ub.Bucket(tk).Get(keyReg)
				if raw == nil {
					return nil
				}
				r, err := d.decode(user, string(tk), raw, false)
				if err != nil {
					// One bad record must not hide every other one.
					d.log.Error("registry: skipping a registration that does not decode", "user", user, "transport", string(tk), "err", err)
					if !opts.IncludeCorrupt {
						return nil
					}
					r = Registration{User: user, Transport: string(tk), Fields: map[string]string{}, Corrupt: err.Error()}
				}
				out = append(out, r)
				return nil
			})
			if err != nil {
				return err
			}
			if opts.Limit > 0 && len(out) >= opts.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: list registrations: %w", err)
	}
	return out, nil
}

// DeleteRegistration implements Store.
func (d *DB) DeleteRegistration(ctx context.Context, user, transport string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := d.db.Update(func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		u := users.Bucket([]byte(user))
		if u == nil || u.Bucket([]byte(transport)) == nil {
			return ErrNotFound
		}
		if err := u.DeleteBucket([]byte(transport)); err != nil {
			return err
		}
		if k, _ := u.Cursor().First(); k == nil {
			return users.DeleteBucket([]byte(user))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("registry: delete registration %s/%s: %w", user, transport, err)
	}
	return nil
}

// Backup writes a consistent copy of the database to dest, while the
// database stays in use: the copy is one read transaction's view, written
// to a temporary file, synced, then renamed over dest. The key file is not
// copied: keep it in its own backup.
func (d *DB) Backup(ctx context.Context, dest string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), filepath.Base(dest)+".tmp-*")
	if err != nil {
		return fmt.Errorf("registry: backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = d.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(tmp)
		return err
	})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dest)
	}
	if err != nil {
		return fmt.Errorf("registry: backup to %s: %w", dest, err)
	}
	return nil
}
