#!/usr/bin/env bash
# pop3-imap.sh - make pcaps/pop3-imap.pcap + pcaps/pop3-imap.manifest.json.
# Dovecot (POP3 on 110, IMAP on 143, plaintext auth, private config and Maildir under the work
# dir) in weir-cap-srv; poplib and imaplib (mail_client.py) in weir-cap-cli.
CAPTURE_NAME=pop3-imap
source "$(dirname "$0")/lib.sh"
require_root
ensure_base_tools
if ! command -v dovecot >/dev/null; then
  ensure_cmds dovecot:"dovecot-imapd dovecot-pop3d"
  # The package may start a system-wide dovecot on the host; this script only wants the binary.
  if command -v systemctl >/dev/null; then systemctl disable --now dovecot >/dev/null 2>&1 || true; fi
fi
netns_up

D=$WORK/dovecot
mkdir -p "$D/run" "$D/state" "$D/home/alice/Maildir/new" "$D/home/alice/Maildir/cur" "$D/home/alice/Maildir/tmp"
# Dovecot refuses uid 0 for mail access; nobody owns the test mailbox.
MAIL_UID=$(id -u nobody); MAIL_GID=$(id -g nobody)
echo "alice:{PLAIN}secret:$MAIL_UID:$MAIL_GID::$D/home/alice::" > "$D/users"
chmod 755 "$D" "$D/run"; chmod 644 "$D/users"
cat > "$D/dovecot.conf" <<CONF
protocols = imap pop3
listen = $SRV_IP
base_dir = $D/run
state_dir = $D/state
log_path = $D/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
passdb {
  driver = passwd-file
  args = scheme=PLAIN $D/users
}
userdb {
  driver = passwd-file
  args = $D/users
}
service imap-login {
  inet_listener imap {
    port = 143
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 110
  }
  inet_listener pop3s {
    port = 0
  }
}
CONF
# Maildir files use LF line endings, like a real delivery; fixed names keep the UIDs in order.
"$PY" - "$D/home/alice/Maildir/new" <<'PYEOF'
import os, sys
sys.path.insert(0, os.environ['MAKE_DIR'])
import mailmsgs
msgs = [mailmsgs.plain_text(11), mailmsgs.attachments(12)[0], mailmsgs.nested(13)[0]]
for i, m in enumerate(msgs, 1):
    path = os.path.join(sys.argv[1], '17040672%02d.M%dP1.mail.weir.test' % (i, i))
    with open(path, 'wb') as f:
        f.write(m.replace(b'\r\n', b'\n'))
    os.utime(path, (1704067200 + i, 1704067200 + i))
PYEOF
chown -R "$MAIL_UID:$MAIL_GID" "$D/home"
srv_bg "$D/stdout.log" dovecot -F -c "$D/dovecot.conf"
wait_listen tcp 110
wait_listen tcp 143
capture_start "$WORK/pop3-imap.pcap"
cli "$PY" "$MAKE_DIR/mail_client.py" "$WORK/manifest.json" \
  "$(tool_versions_json "dovecot=$(dovecot --version | awk '{print $1}')")" || { tail -20 "$D/dovecot.log" >&2; exit 1; }
capture_stop
cp "$WORK/pop3-imap.pcap" "$PCAPS_DIR/pop3-imap.pcap"
cp "$WORK/manifest.json" "$PCAPS_DIR/pop3-imap.manifest.json"
log "wrote $PCAPS_DIR/pop3-imap.pcap ($(stat -c %s "$PCAPS_DIR/pop3-imap.pcap") bytes)"
