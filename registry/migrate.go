package registry

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Bucket and key names. Layout:
//
//	meta/schema_version            uint64, big endian
//	meta/key_check                 HMAC of the key, to recognise it
//	users/<bare JID>/<transport>/registration   JSON (secrets sealed)
//	users/<bare JID>/<transport>/contacts/<address>  JSON
//	users/<bare JID>/<transport>/state/<key>    raw bytes
var (
	bucketMeta     = []byte("meta")
	bucketUsers    = []byte("users")
	bucketContacts = []byte("contacts")
	bucketState    = []byte("state")
	keyVersion     = []byte("schema_version")
	keyCheck       = []byte("key_check")
	keyReg         = []byte("registration")
)

// migrations[i] upgrades a database from schema version i to i+1. Append
// only: a released migration never changes.
var migrations = []func(tx *bolt.Tx) error{
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketUsers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
}

// SchemaVersion is the schema version this code writes.
var SchemaVersion = uint64(len(migrations))

func schemaVersion(tx *bolt.Tx) uint64 {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0
	}
	v := meta.Get(keyVersion)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// migrate brings the schema up to date, each step in its own transaction.
func migrate(db *bolt.DB) error {
	for {
		var done bool
		err := db.Update(func(tx *bolt.Tx) error {
			v := schemaVersion(tx)
			if v > SchemaVersion {
				return fmt.Errorf("registry: database schema version %d is newer than this program's %d: upgrade Passerelle", v, SchemaVersion)
			}
			if v == SchemaVersion {
				done = true
				return nil
			}
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("registry: migrate schema %d → %d: %w", v, v+1, err)
			}
			var buf [8]byte
			binary.BigEndian.PutUint64(buf[:], v+1)
			return tx.Bucket(bucketMeta).Put(keyVersion, buf[:])
		})
		if err != nil || done {
			return err
		}
	}
}
