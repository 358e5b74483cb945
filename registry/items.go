package registry

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// update runs f on a nested bucket of an existing registration.
func (d *DB) update(ctx context.Context, user, transport string, bucket []byte, f func(*bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		r := regBucket(tx, user, transport)
		if r == nil {
			return ErrNotFound
		}
		b, err := r.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return f(b)
	})
}

// view runs f on a nested bucket of an existing registration; b is nil when
// the registration has none yet.
func (d *DB) view(ctx context.Context, user, transport string, bucket []byte, f func(*bolt.Bucket) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.db.View(func(tx *bolt.Tx) error {
		r := regBucket(tx, user, transport)
		if r == nil {
			return ErrNotFound
		}
		return f(r.Bucket(bucket))
	})
}

// PutContact implements Store.
func (d *DB) PutContact(ctx context.Context, user, transport string, c Contact) error {
	if err := checkIDs(user, transport, c.Address); err != nil {
		return fmt.Errorf("registry: put contact: %w", err)
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	err = d.update(ctx, user, transport, bucketContacts, func(b *bolt.Bucket) error {
		return b.Put([]byte(c.Address), raw)
	})
	if err != nil {
		return fmt.Errorf("registry: put contact of %s/%s: %w", user, transport, err)
	}
	return nil
}

// Contacts implements Store.
func (d *DB) Contacts(ctx context.Context, user, transport string) ([]Contact, error) {
	var out []Contact
	err := d.view(ctx, user, transport, bucketContacts, func(b *bolt.Bucket) error {
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var c Contact
			if err := json.Unmarshal(v, &c); err != nil || c.Address == "" {
				// One bad record must not hide every other contact.
				d.log.Error("registry: skipping a contact that does not decode", "user", user, "transport", transport, "contact", string(k), "err", err)
				return nil
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("registry: contacts of %s/%s: %w", user, transport, err)
	}
	return out, nil
}

// DeleteContact implements Store.
func (d *DB) DeleteContact(ctx context.Context, user, transport, address string) error {
	err := d.update(ctx, user, transport, bucketContacts, func(b *bolt.Bucket) error {
		return b.Delete([]byte(address))
	})
	if err != nil {
		return fmt.Errorf("registry: delete contact of %s/%s: %w", user, transport, err)
	}
	return nil
}

// State implements Store.
func (d *DB) State(ctx context.Context, user, transport, key string) ([]byte, error) {
	var out []byte
	err := d.view(ctx, user, transport, bucketState, func(b *bolt.Bucket) error {
		if b != nil {
			if v := b.Get([]byte(key)); v != nil {
				out = append([]byte{}, v...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: state %q of %s/%s: %w", key, user, transport, err)
	}
	return out, nil
}

// PutState implements Store.
func (d *DB) PutState(ctx context.Context, user, transport, key string, value []byte) error {
	if err := checkIDs(user, transport, key); err != nil {
		return fmt.Errorf("registry: put state: %w", err)
	}
	err := d.update(ctx, user, transport, bucketState, func(b *bolt.Bucket) error {
		return b.Put([]byte(key), value)
	})
	if err != nil {
		return fmt.Errorf("registry: put state %q of %s/%s: %w", key, user, transport, err)
	}
	return nil
}

// DeleteState implements Store.
func (d *DB) DeleteState(ctx context.Context, user, transport, key string) error {
	err := d.update(ctx, user, transport, bucketState, func(b *bolt.Bucket) error {
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("registry: delete state %q of %s/%s: %w", key, user, transport, err)
	}
	return nil
}
