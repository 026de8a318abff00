package redisstore

// Keys of the shared bans (bans.go; owner: stratum through BanStore). One
// hash, no hash tag needed: no script touches another key with it.
// Documented in docs/redis.md ("Shared state across frontends").

// bansKey is the hash ban key ("ip:<address>" or "worker:<name>") → unix ms
// until which it is banned.
func (s *Store) bansKey() string { return s.key("bans") }
