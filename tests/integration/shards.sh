#!/usr/bin/env bash
# Shards (issue #14): the reference inventory's 117 sites over 3, then 4 siteprobe instances
# (--shard i/N, --vantage), loopback only. `check --shards 4 --from 3` lists the subtrees that move
# (only to the new shard); each running shard owns whole subtrees, probes their ancestors as
# siteprobe_shard_ancestor, and every site is owned by exactly one shard, for 3 and for 4 shards;
# each checks the next shard with --peer (siteprobe_peer_up 1) and shard 0 a dead URL too (0).
source "$(dirname "$0")/lib.sh"
need_root
INV=config/bac-kan.yml

"$SP_BIN" check --shards 4 --from 3 "$INV" >"$TMP/moves.txt" || fail "check --shards 4 --from 3 exited $?"
cat "$TMP/moves.txt"
grep -q '^from 3 to 4 shards: [0-9]* of 9 units move' "$TMP/moves.txt" || fail "no move summary"
if grep -E '^  .*: shard [0-9] -> [0-2]$' "$TMP/moves.txt"; then fail "a unit moved between two old shards"; fi
sum=$(awk '/^shard /{n += $5} END {print n}' "$TMP/moves.txt")
[ "$sum" = 117 ] || fail "the 4 shards hold $sum sites, want 117"
"$SP_BIN" check --shards 0 "$INV" >/dev/null 2>&1 && fail "--shards 0 accepted"
"$SP_BIN" --config "$INV" --shard 3/3 >/dev/null 2>"$TMP/err" && fail "--shard 3/3 accepted"
grep -q 'bad --shard' "$TMP/err" || fail "--shard 3/3: $(cat "$TMP/err")"
pass "check --shards: moves only to the new shard, 117 sites in all; bad shard specs refused"

run_shards() {  # run_shards N: N daemons on the reference inventory; prints "site owner-count" lines
  local n=$1 i pids=() urls=() dead
  for ((i = 0; i < n; i++)); do urls+=("http://127.0.0.1:$(free_port)"); done
  dead="http://127.0.0.1:$(free_port)"  # nothing listens there
  for ((i = 0; i < n; i++)); do  # each checks the next shard as a peer; shard 0 also a dead one
    local extra=()
    [ "$i" = 0 ] && extra=(--peer "$dead")
    "$SP_BIN" --config "$INV" --web.listen-address "${urls[$i]#http://}" --shard "$i/$n" --vantage lab \
      --peer "${urls[$(((i + 1) % n))]}" "${extra[@]}" >>"$TMP/siteprobe.log" 2>&1 &
    pids+=($!)
  done
  CLEANUPS+=("kill ${pids[*]}")
  for u in "${urls[@]}"; do
    for _ in $(seq 1 100); do curl -fsS "$u/-/ready" >/dev/null 2>&1 && break; sleep 0.1; done
  done
  SP_URL=${urls[0]}
  wait_for 'v == 1' siteprobe_peer_up "peer=\"${urls[1]}\"" 15
  [ "$(metric siteprobe_peer_up "peer=\"$dead\"")" = 0 ] || fail "a dead peer is not down"
  for ((i = 0; i < n; i++)); do
    curl -fsS "${urls[$i]}/metrics" >"$TMP/m$i"
    grep -q "^siteprobe_shard_info{shard=\"$i\",shards=\"$n\",vantage=\"lab\"} 1$" "$TMP/m$i" ||
      fail "shard $i/$n: no siteprobe_shard_info"
  done
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  python3 - "$TMP" "$n" <<'PY'
import re, sys, collections
tmp, n = sys.argv[1], int(sys.argv[2])
owners = collections.Counter()
for i in range(n):
    text = open(f"{tmp}/m{i}").read()
    sites = set(re.findall(r'^siteprobe_site_info\{.*?site="([^"]+)"', text, re.M))
    ancestors = set(re.findall(r'^siteprobe_shard_ancestor\{site="([^"]+)"\} 1$', text, re.M))
    assert ancestors <= sites, "an ancestor that is not probed"
    for s in sites - ancestors:
        owners[s] += 1
    print(f"shard {i}/{n}: {len(sites - ancestors)} sites owned, {len(ancestors)} ancestors probed")
bad = {s: c for s, c in owners.items() if c != 1}
assert len(owners) == 117 and not bad, f"{len(owners)} sites owned, not exactly once: {bad}"
PY
}
run_shards 3 || fail "3 shards"
pass "3 shards: every one of the 117 sites owned by exactly one; siteprobe_peer_up 1 for a peer shard, 0 for a dead URL"
run_shards 4 || fail "4 shards"
pass "4 shards: every one of the 117 sites owned by exactly one"
