-- wrk script for the load harness: every thread cycles through the same list of request paths,
-- each starting at its own offset, so that two connections rarely ask for the same image at
-- the same moment (a server that coalesces identical requests gets no free work).
-- Usage: wrk ... -s wrk.lua http://127.0.0.1:PORT -- PATHS_FILE
-- At the end it prints one line "WRKJSON {...}" with the figures the report needs.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local paths = {}
local counter = 1

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  -- spread the threads' starting points evenly over the list; wrk.thread ids start at 0
  local nthreads = tonumber(args[2]) or 1
  counter = (tid * math.floor(#paths / nthreads)) % #paths + 1
end

function request()
  local path = paths[counter]
  counter = counter % #paths + 1
  return wrk.format("GET", path)
end

function done(summary, latency, _requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"status_errors":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
