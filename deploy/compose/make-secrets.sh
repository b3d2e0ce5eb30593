#!/bin/sh
# Makes the secret files deploy/compose/compose.yaml mounts (once: existing files
# are kept, so re-running never changes a password under a running database).
# They live in ./secrets (mode 700); each file is readable inside the containers,
# which run as other users (voxfleet as 10001, postgres as 999).
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 700 secrets
random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
put() {  # put NAME VALUE
  [ -f "secrets/$1" ] && return 0
  printf '%s' "$2" > "secrets/$1"
  chmod 644 "secrets/$1"
  echo "made secrets/$1"
}
put postgres_password "$(random)"
put redis_password "$(random)"
put secret_key "$(random)"
put admin_api_key "$(random)"
put monitor_admin_password "$(random)"  # the monitor's first admin (user `admin`)
put database_url "postgresql+asyncpg://voxfleet:$(cat secrets/postgres_password)@postgres:5432/voxfleet"
put redis_url "redis://:$(cat secrets/redis_password)@redis:6379/0"
# LiveKit's key file ("name: secret") and the same secret alone, for voxfleet's
# landing and agents (livekit-transport.yaml); an older livekit_keys keeps its secret.
if [ -f secrets/livekit_keys ]; then
  put livekit_api_secret "$(sed 's/^[^:]*: *//' secrets/livekit_keys)"
else
  put livekit_api_secret "$(random)"
fi
put livekit_keys "voxfleet: $(cat secrets/livekit_api_secret)"
