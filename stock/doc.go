// Package stock is seckill's Redis side: the key layout, the Lua scripts that
// sell and return stock, publishing (warm-up), reservations, the gateway-local
// sold-out cache, the distributed in-flight semaphore and Snowflake node-id
// leases. PostgreSQL is the system of record; Redis holds what the buy path
// must decide in one round trip, and what it loses is rebuilt from
// PostgreSQL (Rebuild, driven by order's recovery).
//
// # The buy batcher and its forwarder
//
// Batcher (batch.go) is the only way a buy reaches Redis: it pipelines the
// buy scripts of concurrent requests and, before waking them, hands the
// reservations of each round trip to its Forwarder, which the gateway sets
// at construction to order's publisher. That is the one place stock calls
// something that lives above it, and it is deliberate (issue 9 asked for the
// batcher to be built with its forwarder): the round trip's Redis slot must
// be held until its orders are in the order stream, so a slow stream slows
// this gateway's buys instead of letting them reserve more stock than can be
// confirmed. Forwarder is a one-method interface that stock declares, so the
// import still points down (order imports stock, never the reverse), and the
// outcome comes back as the buy's error (ErrNotForwarded), not as state.
//
// # Keys
//
// Keys (keys.go) builds every key; no other code spells one. <p> is
// Keys.Prefix ("sk" by default). All keys of one item share the hash tag
// {a:<aid>:i:<iid>}, so every script about an item touches one cluster slot;
// a semaphore's keys share {sem:<name>}.
//
//	key                                  type    written by
//	<p>:{a:A:i:I}:item                   HASH    warm.lua creates (stock, total, price, start_ms, end_ms, limit, timeout_s,
//	                                             rid = "<run_id>:<master_replid>" of the server that wrote it,
//	                                             nid = its cluster node id);
//	                                             buy.lua takes stock, restock.lua returns it; fence.lua sets fenced, and
//	                                             buy.lua/restock.lua do when nid is not this node's;
//	                                             rebuild.lua recreates it (or overwrites a fenced one), rid/nid afresh
//	<p>:{a:A:i:I}:buyers                 HASH    user_id -> live units: buy.lua adds, restock.lua subtracts,
//	                                             rebuild.lua replaces
//	<p>:{a:A:i:I}:resv                   HASH    order_id -> reservation JSON: buy.lua writes (a duplicate
//	                                             rewrites it unchanged); restock.lua and
//	                                             ClearReservations (after the persister wrote the row) delete
//	<p>:{a:A:i:I}:resvt                  ZSET    order_id by created_ms, the index StaleReservations reads for the
//	                                             reconciler: same writers as resv
//	<p>:{a:A:i:I}:restocked              SET     order ids whose units were given back: restock.lua adds,
//	                                             rebuild.lua adds the cancelled orders it counted
//	<p>:{a:A:i:I}:idem:<user>:<key>      STRING  order id of a buy's Idempotency-Key, with a TTL: buy.lua;
//	                                             read by HasIdempotencyKey
//	<p>:{sem:<name>}:holders             HASH    holder -> permits: sem_acquire/sem_renew/sem_release.lua
//	<p>:{sem:<name>}:leases              ZSET    holder by lease deadline: the same three scripts
//	<p>:node:<n>                         STRING  Snowflake node n's holder, PX TTL: AcquireNode (SET NX),
//	                                             node_renew.lua, node_release.lua
//
// Nothing else is global: no command spans two slots, and only the
// semaphore's two keys ({sem:<name>}, one slot: a hot key whose cost is a
// script per leased block, not per buy) and the node leases (one key per
// node id, touched per renewal) are shared by every gateway. The items the
// shard checks guard are listed in each process (Registry), not in Redis.
//
// # Shards that lost writes
//
// shards.go: every item hash names the server (rid) and cluster node (nid)
// that wrote it. buy.lua and restock.lua fence an item whose nid is not
// CLUSTER MYID (a replica was promoted); ShardHook, on every new connection
// to a master, and CheckShards, periodically (gateway) and per recovery pass
// (worker), run fence.lua for the Registry's items of that master's slots,
// which fences those whose rid is not its run_id and replid (a restart, or a
// promotion, also one back to a node failed over earlier). An item
// registered after those checks ran (a catalog refresh, a recovery pass) is
// fenced by Guard before it is shown, through the client (fence.lua reads
// the run_id itself); a gateway serves only after one CheckShards pass
// reached every master (CheckShardsAtStart). Only that shard's items are
// fenced; recovery rebuilds them from PostgreSQL. With
// Durability replica, the Batcher also ends each round trip with WAIT on
// each master it used, and so do Restock and RestockMany (ErrNotReplicated
// when not confirmed; a restock is then retried by its caller).
//
// # Scripts
//
// One .lua file per script in package lua, each opening with its KEYS, ARGV
// and return contract; each is wrapped once in a package-level redis.Script
// (store.go) and called through Script.Run, which sends EVALSHA and falls
// back to EVAL when Redis does not know the script (after a restart or a
// failover). One Go wrapper per script maps its return codes to the
// sentinel errors of errors.go.
//
//	buy.lua           fenced or written by another node (nid): refused (and fenced); window, per-user
//	                  limit and stock checked before anything is written; then stock
//	                  taken, buyer's units added, reservation and index written, idempotency key set;
//	                  a duplicate (key or order id seen) rewrites the reservation it found, unchanged,
//	                  so a WAIT after it covers the first run (Store.Buy, Batcher)
//	warm.lua          creates the item hash only if absent, with rid/nid: publishing twice never resets
//	                  stock (Warm)
//	restock.lua       returns a cancelled order's units at most once (restocked set); refuses a missing or
//	                  fenced item, or one written by another node (then fences it) (Restock, RestockMany)
//	fence.lua         marks an existing item fenced when its rid is not the given "<run_id>:<replid>", or
//	                  with none given the server's own (INFO) (the server restarted, or was promoted),
//	                  so buys answer NOT_PUBLISHED until it is rebuilt (CheckShards, ShardHook, Guard)
//	rebuild.lua       recreates a missing or fenced item from PostgreSQL's figures, rid/nid afresh; live
//	                  state always wins over a rebuild (Rebuild)
//	sem_acquire.lua   purges expired holders, then leases up to one block of permits within capacity
//	sem_renew.lua     extends a holder's lease and shrinks it to what it still needs
//	sem_release.lua   gives back all of a holder's permits
//	node_renew.lua    extends a node-id lease if the caller holds it, retakes a vanished one
//	node_release.lua  frees a node id only if the caller still holds it
package stock
