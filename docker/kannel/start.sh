#!/bin/sh
# Writes kannel.conf from the environment and runs bearerbox and smsbox in one container.
# SMSC: `phones`, a fake SMS centre that the `phones` service (fakesmsc) connects to and that prints
# every message. For real traffic put your operator's SMPP account here instead (smsc = smpp, host,
# port, system-type, smsc-username, smsc-password) and drop the phones service.
set -eu
: "${KANNEL_SENDSMS_PASSWORD:?set KANNEL_SENDSMS_PASSWORD}"
conf=/tmp/kannel.conf
cat > "$conf" <<CONF
group = core
admin-port = 13000
admin-password = ${KANNEL_SENDSMS_PASSWORD}
smsbox-port = 13001
box-allow-ip = 127.0.0.1
log-level = 1
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = phones
port = 10000
connect-allow-ip = *.*.*.*

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = 13013
log-level = 1
mo-recode = true

group = sendsms-user
username = segmail
password = ${KANNEL_SENDSMS_PASSWORD}
max-messages = 10
concatenation = true
CONF
if [ -n "${SEGMAIL_SMS_INBOUND_URL:-}" ]; then
  # Replies (STOP) go to segmail's public app; the URL carries a secret: `segmail sms-urls` prints it.
  printf '\ngroup = sms-service\nkeyword = default\ncatch-all = true\nget-url = "%s?from=%%p&to=%%P&text=%%a"\nmax-messages = 0\nomit-empty = true\n' \
    "$SEGMAIL_SMS_INBOUND_URL" >> "$conf"
else
  echo "kannel: SEGMAIL_SMS_INBOUND_URL is not set, replies (STOP) are not passed to segmail; see README 'SMS'" >&2
  printf '\ngroup = sms-service\nkeyword = default\ncatch-all = true\ntext = "ignored"\nmax-messages = 0\n' >> "$conf"
fi
/usr/sbin/bearerbox "$conf" &
sleep 2
exec /usr/sbin/smsbox "$conf"
