#!/usr/bin/env bash
# Follows the README's deployment section on this machine, loopback only: PostgreSQL, Redis,
# the Procfile's release and web commands (two processes), nginx terminating TLS in front.
# Needs the project installed in .venv, PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379.
# On those servers it creates and deletes only what is its own: the database cinema_deploy_<pid>_<random>
# (dropped at the end) and, in Redis db 12, the keys of CACHE_KEY_PREFIX cinema-deploy-<pid>-<random>
# (deleted at the end with SCAN and UNLINK; never a FLUSHDB, other keys are left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

WORK=$(mktemp -d)
RUN="$$_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
DB="cinema_deploy_$RUN"
REDIS_URL="redis://127.0.0.1:6379/12"
KEY_PREFIX="cinema-deploy-${RUN//_/-}"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill -QUIT "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    "$PY" - "$DB" <<'PY' || true
import sys, psycopg2
c = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres"); c.autocommit = True
c.cursor().execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % sys.argv[1])
PY
    "$PY" -c 'import sys; from cinema_api.testing import RedisPrefix; RedisPrefix(*sys.argv[1:]).clean()' \
        "$REDIS_URL" "$KEY_PREFIX" || true
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# Four distinct free loopback ports, held open together while they are chosen.
read -r APP1 APP2 HTTP HTTPS < <("$PY" -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

echo "== PostgreSQL database $DB, Redis db 12 under the key prefix $KEY_PREFIX"
"$PY" - "$DB" <<'PY'
import sys, psycopg2
c = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres"); c.autocommit = True
c.cursor().execute('CREATE DATABASE "%s"' % sys.argv[1])
PY

# The environment of the README's deployment section; a key prefix of this run's own, so that no
# count or body of an earlier run (or of anyone else's use of db 12) is found or touched.
export DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$DB"
export CACHE_URL="$REDIS_URL"
export CACHE_KEY_PREFIX="$KEY_PREFIX"
export JWT_SECRET="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')"
export TRUSTED_PROXIES="127.0.0.1"
export PATH="$PWD/$VENV/bin:$PATH"

echo "== Procfile release"
release=$(sed -n 's/^release: //p' deploy/Procfile)
bash -c "$release"

echo "== Procfile web, twice (HOST=127.0.0.1 instead of 0.0.0.0: loopback only here)"
web=$(sed -n 's/^web: //p' deploy/Procfile | sed 's/HOST=0.0.0.0/HOST=127.0.0.1/')
for port in "$APP1" "$APP2"; do
    PORT=$port LOG_FORMAT=json bash -c "$web" >"$WORK/app-$port.log" 2>&1 &
    PIDS+=($!)
done

# Both processes answer before nginx starts: a process still starting would be marked down by
# nginx (max_fails) and leave the other one to serve every request of the check.
for port in "$APP1" "$APP2"; do
    for _ in $(seq 1 150); do
        curl -sf "http://127.0.0.1:$port/v1/health/ready" >/dev/null && break
        sleep 0.2
    done
done

echo "== nginx with deploy/nginx.conf (ports and certificate paths adapted)"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=cinema.example.com" \
    -keyout "$WORK/cert.key" -out "$WORK/cert.pem" 2>/dev/null
sed -e "s#127.0.0.1:6543#127.0.0.1:$APP1#; s#127.0.0.1:6544#127.0.0.1:$APP2#" \
    -e "s#listen 80;#listen 127.0.0.1:$HTTP;#; s#listen 443 ssl http2;#listen 127.0.0.1:$HTTPS ssl http2;#" \
    -e "/listen \[::\]/d" \
    -e "s#/etc/ssl/certs/cinema.example.com.pem#$WORK/cert.pem#; s#/etc/ssl/private/cinema.example.com.key#$WORK/cert.key#" \
    deploy/nginx.conf >"$WORK/site.conf"
cat >"$WORK/nginx-main.conf" <<CONF
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 256; }
http {
    access_log $WORK/nginx-access.log;
    client_body_temp_path $WORK/body; proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi; uwsgi_temp_path $WORK/uwsgi; scgi_temp_path $WORK/scgi;
    include $WORK/site.conf;
}
CONF
"$NGINX" -t -p "$WORK" -c "$WORK/nginx-main.conf"
"$NGINX" -p "$WORK" -c "$WORK/nginx-main.conf"

echo "== requests through nginx"
"$PY" - "$HTTP" "$HTTPS" "$WORK" "$APP1" "$APP2" <<'PY'
import json, ssl, sys, time, http.client, urllib.request

http_port, https_port, work, app1, app2 = sys.argv[1:6]
context = ssl._create_unverified_context()

def call(method, path, body=None, token=None, port=https_port, tls=True, headers=None):
    connection = (http.client.HTTPSConnection("127.0.0.1", int(port), context=context, timeout=10) if tls
                  else http.client.HTTPConnection("127.0.0.1", int(port), timeout=10))
    all_headers = dict(headers or {}, Host="cinema.example.com")
    if body is not None:
        all_headers["Content-Type"] = "application/json"
    if token:
        all_headers["Authorization"] = "Bearer " + token
    connection.request(method, path, json.dumps(body) if body is not None else None, all_headers)
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    return response.status, response.headers, (json.loads(raw) if raw and response.headers.get("Content-Type", "").startswith("application/json") else None)

deadline = time.time() + 30
while True:
    try:
        status, headers, body = call("GET", "/v1/health")
        if status == 200:
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("the stack did not come up")
    time.sleep(0.3)

status, headers, _ = call("GET", "/v1/health", port=http_port, tls=False)
assert status == 301 and headers["Location"] == "https://cinema.example.com/v1/health", (status, dict(headers))
status, headers, body = call("GET", "/v1/health")
assert status == 200 and body["info"] == {"database": {"status": "up"}, "cache": {"status": "up"}}, body
assert headers["Strict-Transport-Security"].startswith("max-age="), dict(headers)
assert headers["X-Trace-Id"]

status, _, auth = call("POST", "/v1/auth/register", {"username": "customer", "password": "secret123", "age": 30})
assert status == 201, auth
status, _, body = call("POST", "/v1/auth/register", {"username": "boss", "password": "secret123", "age": 40, "role": "manager"})
assert status == 403, body  # production: no manager self-signup
token = auth["accessToken"]
for _ in range(10):
    status, headers, body = call("GET", "/v1/movies?perPage=5", token=token)
    assert status == 200, body
status, headers, body = call("GET", "/v1/users/%s" % auth["user"]["id"], token=token)
assert status == 200, (status, body)
# X-Forwarded-Proto and Host reached the application: its links are https on the public name
status, headers, _ = call("GET", "/v1/tickets/me", token=token)
assert status == 200 and "<https://cinema.example.com/v1/tickets/me?page=1>" in headers["Link"], dict(headers)
status, headers, _ = call("POST", "/v1/auth/logout", token=token)
assert status == 204
for _ in range(4):  # every process honours the logout
    assert call("GET", "/v1/movies", token=token)[0] == 401

# failed logins are counted per client: nginx's X-Forwarded-For hop is trusted
for index in range(10):
    result = call("POST", "/v1/auth/login", {"username": "nobody%d" % index, "password": "wrong1234"}, headers={"X-Forwarded-For": "203.0.113.9"})
    assert result[0] == 401, result
result = call("POST", "/v1/auth/login", {"username": "other", "password": "wrong1234"}, headers={"X-Forwarded-For": "203.0.113.9"})
assert result[0] == 429, result
result = call("POST", "/v1/auth/login", {"username": "customer", "password": "secret123"}, headers={"X-Forwarded-For": "198.51.100.4"})
assert result[0] == 200, result

# trace context flows through nginx: the client's traceparent is continued
parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
status, headers, _ = call("GET", "/v1/health/live", headers={"traceparent": parent})
assert status == 200 and headers["X-Trace-Id"] == "4bf92f3577b34da6a3ce929d0e0e4736", dict(headers)
assert headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and headers["traceparent"] != parent
# /metrics: never through nginx; each process serves its own to the scraper on this host
# (deploy/prometheus.yml lists one target per process)
assert call("GET", "/metrics")[0] == 404
from prometheus_client.parser import text_string_to_metric_families
served = 0
for port in (app1, app2):
    with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=10) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    counted = sum(s.value for s in families["cinema_http_requests"].samples if s.name == "cinema_http_requests_total")
    assert counted > 0 and families["process_resident_memory_bytes"].samples[0].value > 0, port
    served += counted
assert served >= 30, served

# both processes served requests
for port in (app1, app2):
    with open("%s/app-%s.log" % (work, port)) as log:
        served = [json.loads(line) for line in log if '"cinema_api.access"' in line]
    assert any(r["path"].startswith("/v1/") and r["trace_id"] for r in served), (port, open("%s/app-%s.log" % (work, port)).read()[-2000:])
print("deployment check passed: nginx (TLS, redirect, HSTS) -> 2 processes -> PostgreSQL + Redis")
PY

echo "== Redis: the processes wrote their keys under $KEY_PREFIX: (deleted on exit)"
"$PY" - "$REDIS_URL" "$KEY_PREFIX" <<'PY'
import sys, redis
url, prefix = sys.argv[1:3]
client = redis.Redis.from_url(url)
keys = [key.decode() for key in client.scan_iter(match=prefix + ":*", count=1000)]
client.close()
assert any(key.startswith(prefix + ":login:") for key in keys), keys  # the failed logins of the check
print("%d keys of %s:" % (len(keys), prefix))
PY
