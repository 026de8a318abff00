package redisstore

// Keys of the role leases (lease.go). Each lease is one string key; it needs
// no hash tag because no script touches two of them. Documented in
// docs/redis.md ("Leases").

// leaseKey is the string holding the owner token of the process that holds
// role, with the lease's TTL as the key's expiry.
func (s *Store) leaseKey(role string) string { return s.key("lease", role) }
