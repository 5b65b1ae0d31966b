#!/usr/bin/env bash
# make demo: a 3-node Kelpie cluster (local driver, 3 copies) on loopback, a VDI served over
# iSCSI by Debian's tgtd through its sheepdog backing store, and real clients using it.
# Everything it starts is stopped by PID on exit (also on failure or Ctrl-C).
# KEEP=1 leaves the cluster running until you press Enter.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin}
WORK=$(mktemp -d /tmp/kelpie-demo.XXXXXX)
PIDS=()
TGT_CTL=$((300 + RANDOM % 600))
PORTAL=$((23000 + RANDOM % 5000))
BASE=$((7700 + RANDOM % 2000))   # tgtd can only reach sheep ports of 4 digits

cleanup() {
  set +e
  tgtadm -C "$TGT_CTL" --op delete --mode system --force >/dev/null 2>&1
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 1
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
dog() { "$BIN/dog" "$@" -p "$BASE"; }

say "Starting 3 sheep on 127.0.0.1:$BASE-$((BASE + 2)), zones 1-3, local driver file $WORK/shm"
for i in 0 1 2; do
  "$BIN/sheep" -f -p $((BASE + i)) -z $((i + 1)) -c "local:$WORK/shm" "$WORK/sheep$i" \
    >"$WORK/sheep$i.out" 2>&1 &
  PIDS+=($!); disown $!
done
for _ in $(seq 100); do
  [ "$("$BIN/dog" node list -r -p "$BASE" 2>/dev/null | wc -l)" = 3 ] && break
  sleep 0.1
done
run "$BIN/dog" node list -p "$BASE"

say "Formatting with 3 copies and creating a 256 MiB VDI"
run "$BIN/dog" cluster format -c 3 -p "$BASE"
run "$BIN/dog" vdi create demo 256M -p "$BASE"
echo "Hello from Kelpie" | run "$BIN/dog" vdi write demo 0 18 -p "$BASE"
run "$BIN/dog" cluster info -p "$BASE"

say "Debian tgtd exports the VDI over iSCSI (bs_sheepdog, protocol v2 on the wire)"
tgtd -f -C "$TGT_CTL" --iscsi "portal=127.0.0.1:$PORTAL" >"$WORK/tgtd.out" 2>&1 &
PIDS+=($!); disown $!
for _ in $(seq 100); do
  tgtadm -C "$TGT_CTL" --op show --mode target >/dev/null 2>&1 && break
  sleep 0.1
done
IQN=iqn.2026-11.io.kelpie.demo:demo
tgtadm -C "$TGT_CTL" --lld iscsi --op new --mode target --tid 1 -T "$IQN"
tgtadm -C "$TGT_CTL" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 \
  --bstype sheepdog -b "tcp:127.0.0.1:$((BASE + 1)):demo"
tgtadm -C "$TGT_CTL" --lld iscsi --op bind --mode target --tid 1 -I ALL
URL="iscsi://127.0.0.1:$PORTAL/$IQN/1"
run iscsi-ls -s "iscsi://127.0.0.1:$PORTAL/"

say "qemu-io over iSCSI: the bytes dog wrote, then a pattern across the first object boundary"
run qemu-io -f raw -c "read -v 0 18" "$URL"
run qemu-io -f raw -c "write -P 0xa5 4190208 8k" -c "read -P 0xa5 4190208 8k" "$URL"

say "Reading the same bytes back through another sheep, and checking every copy"
"$BIN/dog" vdi read demo 4194304 16 -p $((BASE + 2)) | od -An -tx1
run "$BIN/dog" vdi check demo -p "$BASE"
run "$BIN/dog" vdi object -i 1 demo -p "$BASE"

say "kelpie-iscsi: two targets through two sheep export the same VDI as one LU (multipath)"
KP_A=$((PORTAL + 1)); KP_B=$((PORTAL + 2))
"$BIN/kelpie-iscsi" -f --listen "127.0.0.1:$KP_A" --sheep "127.0.0.1:$BASE,127.0.0.1:$((BASE + 1))" \
  --export demo >"$WORK/kelpie-iscsi-a.out" 2>&1 &
PIDS+=($!); disown $!
"$BIN/kelpie-iscsi" -f --listen "127.0.0.1:$KP_B" --sheep "127.0.0.1:$((BASE + 1)),127.0.0.1:$BASE" \
  --export demo >"$WORK/kelpie-iscsi-b.out" 2>&1 &
PIDS+=($!); disown $!
for _ in $(seq 100); do
  iscsi-ls "iscsi://127.0.0.1:$KP_B/" >/dev/null 2>&1 && break
  sleep 0.1
done
run iscsi-ls -s "iscsi://127.0.0.1:$KP_A/"
KURL_A="iscsi://127.0.0.1:$KP_A/iqn.2026-11.io.kelpie:demo/0"
KURL_B="iscsi://127.0.0.1:$KP_B/iqn.2026-11.io.kelpie:demo/0"
echo "One LU through both targets: the same serial (VPD 0x80; the NAA in 0x83 likewise)"
run iscsi-inq -e 1 -c 128 "$KURL_A"
run iscsi-inq -e 1 -c 128 "$KURL_B"
run qemu-io -f raw -c "write -P 0x5c 12582912 64k" "$KURL_A"
run qemu-io -f raw -c "read -P 0x5c 12582912 64k" "$KURL_B"
run "$BIN/dog" vdi lock list -p "$BASE"

say "Snapshot and clone; kill -9 one sheep; the data is still there"
run "$BIN/dog" vdi snapshot -s before demo -p "$BASE"
run "$BIN/dog" vdi clone -s before demo copy -p "$BASE"
kill -9 "${PIDS[2]}"
sleep 1
run "$BIN/dog" node list -p "$BASE"
"$BIN/dog" vdi read copy 4194304 16 -p "$BASE" | od -An -tx1
run "$BIN/dog" vdi list -p "$BASE"

if [ "${KEEP:-0}" = 1 ]; then
  echo "Cluster on 127.0.0.1:$BASE, iSCSI at $URL. Press Enter to stop."
  read -r
fi
say "Demo done; stopping everything"
