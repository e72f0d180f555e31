#!/usr/bin/env bash
# smb.sh - make pcaps/smb.pcap + pcaps/smb.manifest.json.
# Samba's smbd (Debian 12, a private smb.conf in the work dir, port 445 only, no NetBIOS) in
# weir-cap-srv; Samba's smbclient in weir-cap-cli, one connection per dialect (SMB 2.02, 2.10,
# 3.0.0, 3.1.1) doing get/put/ls/mkdir, and one session on a share that requires SMB3
# encryption. tcpdump on the client end of the veth. Needs root.
CAPTURE_NAME=smb
source "$(dirname "$0")/lib.sh"
require_root
ensure_base_tools
ensure_cmds smbd:samba smbclient:smbclient smbpasswd:samba editcap:wireshark-common
netns_up

SAMBA=$WORK/samba
SHARE=$WORK/share
DL=$WORK/downloads
mkdir -p "$SAMBA"/{lock,state,cache,private,pid,ncalrpc,log} "$SHARE" "$DL"
chmod 755 "$SHARE"
python3 - "$SHARE" <<'PYEOF'
import os, sys
sys.path.insert(0, os.environ['MAKE_DIR'])
import common
for name, data in common.corpus().items():
    with open(os.path.join(sys.argv[1], name), 'wb') as f:
        f.write(data)
PYEOF
# The uploads come from here (the same deterministic corpus).
mkdir -p "$WORK/src"
cp "$SHARE/update.bin" "$SHARE/server.log" "$SHARE/readme.txt" "$WORK/src/"
rm "$SHARE/update.bin" "$SHARE/server.log"

CONF=$WORK/smb.conf
cat >"$CONF" <<EOF
[global]
  workgroup = WEIR
  netbios name = WEIRSRV
  server role = standalone server
  interfaces = $SRV_IP/24
  bind interfaces only = yes
  smb ports = 445
  disable netbios = yes
  server min protocol = SMB2_02
  lock directory = $SAMBA/lock
  state directory = $SAMBA/state
  cache directory = $SAMBA/cache
  private dir = $SAMBA/private
  pid directory = $SAMBA/pid
  ncalrpc dir = $SAMBA/ncalrpc
  log file = $SAMBA/log/%m.log
  passdb backend = tdbsam:$SAMBA/private/passdb.tdb
  map to guest = never
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
[files]
  path = $SHARE
  read only = no
  force user = root
[secret]
  path = $SHARE
  read only = no
  force user = root
  smb encrypt = required
EOF
# The Samba account maps to the existing 'nobody' user; the shares force root for file access.
printf 'secret\nsecret\n' | smbpasswd -c "$CONF" -s -a nobody >/dev/null
srv_bg "$SAMBA/smbd.out" smbd --foreground --no-process-group --debug-stdout -s "$CONF"
wait_listen tcp 445

capture_start "$WORK/smb.pcap"
# smbclient SHARE DIALECT COMMANDS [extra options]: one TCP connection, that dialect only.
smbc() {
  local share=$1 dialect=$2 cmds=$3; shift 3
  cli smbclient "//$SRV_IP/$share" -U nobody%secret -m "$dialect" \
    --option="client min protocol=$dialect" \
    -c "$cmds" "$@" >>"$WORK/smbclient.log" 2>&1 || die "smbclient $share $dialect failed: $(tail -5 "$WORK/smbclient.log")"
}
cd "$WORK"
smbc files SMB3_11 "ls; get logo.png $DL/logo.png; get firmware.bin $DL/firmware.bin"
smbc files SMB2_10 "get report.pdf $DL/report.pdf; put $WORK/src/update.bin update.bin"
smbc files SMB3_00 "mkdir upload; put $WORK/src/server.log upload\\server.log; get eicar.com $DL/eicar.com"
smbc files SMB2_02 "get docs.zip $DL/docs.zip; get notes.txt $DL/notes.txt"
smbc secret SMB3_11 "get readme.txt $DL/readme.txt" --client-protection=encrypt
capture_stop

SMBD_VERSION=$(smbd --version | awk '{print $2}')
python3 - "$WORK" "$PCAPS_DIR/smb.manifest.json" "$(tool_versions_json "samba=$SMBD_VERSION")" <<'PYEOF'
import os, sys
sys.path.insert(0, os.environ['MAKE_DIR'])
import common
work, out, tools = sys.argv[1:4]
F = common.corpus()
M = common.Manifest('smb.pcap', 'pcaps/make/smb.sh',
                    'SMB2/3 between Samba smbclient and smbd: dialects 2.02, 2.10, 3.0.0 and 3.1.1; '
                    'get (READ, incl. multi-credit reads), put (WRITE), ls, mkdir; one session on an '
                    'encrypted (SMB3 transform) share')
M.note('name: the file name in the SMB2 CREATE request, relative to the share \\\\10.77.0.1\\files')
M.note('conn: smbclient invocation (one TCP connection each), in capture order')
M.note('the encrypted session (conn 5) moved readme.txt inside SMB3 transform records: nothing of it '
       'can be extracted, so it is listed under exchanges_without_body')

def check(path, want, what):
    with open(path, 'rb') as f:
        got = f.read()
    if got != want:
        sys.exit(f'{what}: {path} differs from the generated source')
    return got

gets = [(1, 'SMB3_11', 'logo.png'), (1, 'SMB3_11', 'firmware.bin'), (2, 'SMB2_10', 'report.pdf'),
        (3, 'SMB3_00', 'eicar.com'), (4, 'SMB2_02', 'docs.zip'), (4, 'SMB2_02', 'notes.txt')]
puts = [(2, 'SMB2_10', 'update.bin', 'update.bin'), (3, 'SMB3_00', 'upload\\server.log', 'upload/server.log')]
order = sorted([(c, 0, i) for i, (c, *_ ) in enumerate(gets)] + [(c, 1, i) for i, (c, *_ ) in enumerate(puts)])
for conn, kind, i in order:
    if kind == 0:
        c, dialect, name = gets[i]
        data = check(os.path.join(work, 'downloads', name), F[name], 'get')
        M.add('smb', 'to_client', 'file', name, data, f'smbclient get ({dialect})', conn=c, dialect=dialect,
              command='READ')
    else:
        c, dialect, name, disk = puts[i]
        base = os.path.basename(disk)
        data = check(os.path.join(work, 'share', disk), F[base], 'put')
        M.add('smb', 'to_server', 'file', name, data, f'smbclient put ({dialect})', conn=c, dialect=dialect,
              command='WRITE')
check(os.path.join(work, 'downloads', 'readme.txt'), F['readme.txt'], 'encrypted get')
M.add_exchange('smb', 'readme.txt', 'smbclient get on share "secret" (smb encrypt = required, SMB3_11): '
               'SMB3 transform records, not extractable', conn=5, dialect='SMB3_11', encrypted=True,
               size=len(F['readme.txt']), sha256=common.sha256(F['readme.txt']))
M.write(out, tools)
PYEOF

# `weir replay pcaps/` reads the captures in name order as one: smb.pcap sorts between
# pop3-imap.pcap and smtp.pcap. When this capture is made after those (a partial rebuild), its
# timestamps are shifted back into the gap between them, if it fits, and the manifest says so.
OUT=$WORK/smb.pcap
prev=$PCAPS_DIR/pop3-imap.pcap next=$PCAPS_DIR/smtp.pcap
if [ -f "$prev" ] && [ -f "$next" ]; then
  read -r start end < <(capinfos -a -e -S -T -r "$OUT" | awk -F'\t' '{print $2, $3}')
  read -r _ prev_end < <(capinfos -a -e -S -T -r "$prev" | awk -F'\t' '{print $2, $3}')
  read -r next_start _ < <(capinfos -a -e -S -T -r "$next" | awk -F'\t' '{print $2, $3}')
  shift_s=$(awk -v s="$start" -v e="$end" -v p="$prev_end" -v n="$next_start" \
    'BEGIN { if (s >= n && e - s + 0.4 < n - p) printf "%.6f", (p + 0.2) - s; else print "" }')
  if [ -n "$shift_s" ]; then
    editcap -t "$shift_s" "$OUT" "$WORK/smb-shifted.pcap"
    OUT=$WORK/smb-shifted.pcap
    python3 - "$PCAPS_DIR/smb.manifest.json" "$shift_s" <<'PYEOF'
import json, sys
path, shift = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
doc['notes'].append(f'timestamps shifted by {shift} s (editcap -t) into the gap between pop3-imap.pcap '
                    'and smtp.pcap, so `weir replay pcaps/` stays chronological; the packets are unchanged')
with open(path, 'w') as f:
    json.dump(doc, f, indent=1)
    f.write('\n')
PYEOF
    log "shifted timestamps by $shift_s s to sort between pop3-imap.pcap and smtp.pcap"
  elif awk -v s="$start" -v n="$next_start" 'BEGIN { exit !(s >= n) }'; then
    log "WARNING: smb.pcap is later than smtp.pcap; rerun all captures for a chronological pcaps/"
  fi
fi
cp "$OUT" "$PCAPS_DIR/smb.pcap"
log "wrote $PCAPS_DIR/smb.pcap ($(stat -c %s "$PCAPS_DIR/smb.pcap") bytes)"
