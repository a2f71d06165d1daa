-- wrk script of the benchmark: GET paths in turn, logins, or purchases of fresh
-- (customer, session) pairs. Configured from environment variables set by bench/run.py.
-- At the end it prints one line with the response statuses it counted.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local function words(name)
  local list = {}
  for word in string.gmatch(os.getenv(name) or "", "%S+") do
    table.insert(list, word)
  end
  return list
end

function init(args)
  mode = os.getenv("BENCH_MODE") or "get"
  token = os.getenv("BENCH_TOKEN")
  paths = words("BENCH_PATHS")
  tokens = words("BENCH_TOKENS")
  sessions = words("BENCH_SESSIONS")
  offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
  threads_total = tonumber(os.getenv("BENCH_THREADS") or "2")
  login_body = os.getenv("BENCH_LOGIN") or ""
  expected = tonumber(os.getenv("BENCH_EXPECT") or "200")
  sent = 0
  unexpected = 0
  status_5xx = 0
  status_503 = 0
end

function request()
  sent = sent + 1
  if mode == "purchase" then
    local pair = offset + (sent - 1) * threads_total + id
    local customer = pair % #tokens + 1
    local session = math.floor(pair / #tokens) % #sessions + 1
    local headers = {["Authorization"] = "Bearer " .. tokens[customer], ["Content-Type"] = "application/json"}
    return wrk.format("POST", "/v1/tickets", headers, '{"sessionId": "' .. sessions[session] .. '"}')
  elseif mode == "login" then
    return wrk.format("POST", "/v1/auth/login", {["Content-Type"] = "application/json"}, login_body)
  end
  local headers = {}
  if token then
    headers["Authorization"] = "Bearer " .. token
  end
  return wrk.format("GET", paths[(sent - 1) % #paths + 1], headers)
end

function response(status, headers, body)
  if status ~= expected then
    unexpected = unexpected + 1
  end
  if status >= 500 then
    status_5xx = status_5xx + 1
  end
  if status == 503 then
    status_503 = status_503 + 1
  end
end

function done(summary, latency, requests)
  local totals = {unexpected = 0, status_5xx = 0, status_503 = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  io.write(string.format("BENCH unexpected=%d status_5xx=%d status_503=%d\n", totals.unexpected, totals.status_5xx, totals.status_503))
end
