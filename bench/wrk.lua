-- wrk script of the benchmark, configured from environment variables set by bench/run.py:
--   BENCH_MODE     get (default): GET the paths in turn; search: a title search for a random
--                  3-letter substring per request; purchase: POST /v1/tickets for a (customer,
--                  session) pair no request of the run has bought; login: POST /v1/auth/login
--   BENCH_PATHS, BENCH_TOKENS, BENCH_SESSIONS   files, one item per line (lists too long for
--                  the environment)
--   BENCH_TOKEN    bearer token of get and search; BENCH_LOGIN: body of login
--   BENCH_OFFSET   first pair index of purchase (pairs of earlier runs stay bought)
--   BENCH_EXPECT   the status a request should get (default 200)
--   BENCH_THREADS  wrk's -t (a thread's script cannot count the threads)
--   BENCH_SEED     seed of the random substrings
-- At the end it prints one line with what it counted in the responses, and next_pair: the
-- first pair index that no thread sent (the threads take turns, but need not send as many).

local threads = {}
local thread_count = 0
local offset_of_run = tonumber(os.getenv("BENCH_OFFSET") or "0")
local counters = {"unexpected", "status_5xx", "status_503", "cache_hits", "cache_misses"}
local letters = "abcdefghijklmnopqrstuvwxyz"

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local function lines(name)
  local list = {}
  local path = os.getenv(name)
  if path then
    for line in io.lines(path) do
      table.insert(list, line)
    end
  end
  return list
end

function init(args)
  mode = os.getenv("BENCH_MODE") or "get"
  token = os.getenv("BENCH_TOKEN")
  paths = lines("BENCH_PATHS")
  tokens = lines("BENCH_TOKENS")
  sessions = lines("BENCH_SESSIONS")
  offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
  login_body = os.getenv("BENCH_LOGIN") or ""
  expected = tonumber(os.getenv("BENCH_EXPECT") or "200")
  threads_total = tonumber(os.getenv("BENCH_THREADS"))
  -- each thread its own sequence: the two threads must not search the same substrings
  math.randomseed(tonumber(os.getenv("BENCH_SEED") or os.time()) + id)
  sent = 0
  for _, name in ipairs(counters) do
    _G[name] = 0
  end
end

local function random_substring()
  local picked = {}
  for i = 1, 3 do
    local at = math.random(#letters)
    picked[i] = letters:sub(at, at)
  end
  return table.concat(picked)
end

local function authorised(headers)
  if token then
    headers["Authorization"] = "Bearer " .. token
  end
  return headers
end

function request()
  sent = sent + 1
  if mode == "purchase" then
    -- threads take turns, so no pair is sent twice; session first, so that customers added
    -- between runs extend the pairs without moving the ones already bought
    local pair = offset + (sent - 1) * threads_total + id
    local session = pair % #sessions + 1
    local customer = math.floor(pair / #sessions) % #tokens + 1
    local headers = {["Authorization"] = "Bearer " .. tokens[customer], ["Content-Type"] = "application/json"}
    return wrk.format("POST", "/v1/tickets", headers, '{"sessionId": "' .. sessions[session] .. '"}')
  elseif mode == "login" then
    return wrk.format("POST", "/v1/auth/login", {["Content-Type"] = "application/json"}, login_body)
  elseif mode == "search" then
    return wrk.format("GET", "/v1/movies?perPage=20&title=" .. random_substring(), authorised({}))
  end
  return wrk.format("GET", paths[(sent - 1) % #paths + 1], authorised({}))
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
  local cache = headers["X-Cache"]
  if cache == "HIT" then
    cache_hits = cache_hits + 1
  elseif cache == "MISS" then
    cache_misses = cache_misses + 1
  end
end

function done(summary, latency, requests)
  local line = {"BENCH"}
  for _, name in ipairs(counters) do
    local total = 0
    for _, thread in ipairs(threads) do
      total = total + thread:get(name)
    end
    table.insert(line, name .. "=" .. total)
  end
  local most = 0
  for _, thread in ipairs(threads) do
    most = math.max(most, thread:get("sent"))
  end
  table.insert(line, "next_pair=" .. string.format("%d", offset_of_run + most * thread_count))
  io.write(table.concat(line, " ") .. "\n")
end
