#!/usr/bin/env bash
# A walkthrough of the command gateway over HTTP with curl (docs/commands.md): send a command with an idempotency
# key, send it again (a duplicate: answered from the ledger, nothing sent twice), follow it until it ends, then two
# refusals as documented: 400 (invalid body, every problem in `details`) and 422 (a type the provider cannot do).
#
#   CHATBRIDGE_URL=http://localhost:8080 CHATBRIDGE_TOKEN=… CHANNEL=wa-sales CONVERSATION=5511999999999 \
#     bash examples/commands/commands.sh
#
# Environment: CHATBRIDGE_URL (default http://localhost:8080), CHATBRIDGE_TOKEN (required, one of the bridge's
# CHATBRIDGE_API_TOKENS), CHANNEL (a channel id of the bridge's config), CONVERSATION (a conversation of it),
# TEXT (default "Hello from the walkthrough"), COMMAND_ID (default: a fresh one; reuse one to see it answered as a
# duplicate), UNSUPPORTED_TYPE (a type the channel's provider cannot do, default "typing": only Smartsupp does it).
# Needs bash and curl only. Exits non-zero when an answer is not the documented one.
set -euo pipefail

URL="${CHATBRIDGE_URL:-http://localhost:8080}"
TOKEN="${CHATBRIDGE_TOKEN:?set CHATBRIDGE_TOKEN to one of CHATBRIDGE_API_TOKENS of the bridge}"
CHANNEL="${CHANNEL:?set CHANNEL to a channel id of the bridge}"
CONVERSATION="${CONVERSATION:?set CONVERSATION to a conversation of that channel}"
TEXT="${TEXT:-Hello from the walkthrough}"
# The idempotency key: 1-128 of letters, digits, . _ : @ - ; keep it with the command and send it again on any doubt.
COMMAND_ID="${COMMAND_ID:-walkthrough-$(date +%s)-$$}"
UNSUPPORTED_TYPE="${UNSUPPORTED_TYPE:-typing}"

# POSTs a JSON body to the channel's commands; prints "<status> <body>".
post() {
  local out
  out=$(curl -sS -X POST "$URL/v1/channels/$CHANNEL/commands" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d "$1" -w '\n%{http_code}')
  echo "${out##*$'\n'} ${out%$'\n'*}"
}

# Fails the walkthrough unless the answer has the expected status.
expect() {
  local want="$1" got="$2" what="$3"
  echo "$what: $got"
  [ "${got%% *}" = "$want" ] || { echo "expected $want" >&2; exit 1; }
}

# A JSON string of $1 (quotes and backslashes escaped; enough for ids and plain text).
json() {
  local s="${1//\\/\\\\}"
  printf '"%s"' "${s//\"/\\\"}"
}

body="{\"commandId\":$(json "$COMMAND_ID"),\"type\":\"message.send\",\"conversationId\":$(json "$CONVERSATION"),\"text\":$(json "$TEXT")}"

echo "1. send (202, duplicate false)"
expect 202 "$(post "$body")" "send"

echo "2. the same commandId and body again: its stored state, duplicate true, nothing sent again"
expect 202 "$(post "$body")" "repeat"

echo "3. follow it until it ends (sent or failed)"
for _ in $(seq 1 150); do
  state=$(curl -sS "$URL/v1/commands/$COMMAND_ID" -H "authorization: Bearer $TOKEN")
  # The command's own status comes first in the answer (an upstream's `result`, if any, comes later).
  status=$(grep -o '"status":"[a-z]*"' <<<"$state" | head -n 1 | cut -d '"' -f 4)
  [ "$status" = sent ] || [ "$status" = failed ] && break
  sleep 0.2
done
echo "final: $state"

echo "4. an invalid body: 400, every problem in details"
expect 400 "$(post '{"commandId":"walkthrough-invalid","conversationId":42,"colour":"blue"}')" "invalid"

echo "5. a type the provider cannot do: 422, the message names what it supports"
expect 422 "$(post "{\"commandId\":\"walkthrough-unsupported\",\"type\":$(json "$UNSUPPORTED_TYPE"),\"conversationId\":$(json "$CONVERSATION")}")" "unsupported"

[ "$status" = sent ]
