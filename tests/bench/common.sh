# Shared by the scripts in tests/bench: a work dir, a loopback HTTP server
# (python's threaded http.server) serving $work/www, and a c41 config that
# grants hello-http that server. Source it after setting C41; it sets $work,
# $port and $server and removes them on exit.
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www" "$work/out" "$work/cache"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
cat >"$work/c41.toml" <<TOML
output-dir = "$work/out"
[services.site]
url = "http://127.0.0.1:$port"
kind = "http"
[skills.hello-http]
grants = ["site"]
TOML
